-- Gatehouse schema, version 16: the events whose outcome is not `allowed`
-- (denied, error, revoked), by outcome. They are few, so a view of one such
-- outcome reads them here in id order and stops at its page, instead of
-- walking the whole log for them; an allowed event, nearly every event,
-- costs this index nothing.
CREATE INDEX audit_events_not_allowed ON audit_events(outcome) WHERE outcome <> 'allowed';
