-- Gatehouse schema, version 4: the audit log is a chain. Each event carries
-- the seal of the event before it and its own seal, a keyed hash (the key is
-- in the OS keychain, never here) over that previous seal and its content.
-- Rows written before this version are sealed when the store opens.
ALTER TABLE audit_events ADD COLUMN prev_seal TEXT;
ALTER TABLE audit_events ADD COLUMN seal TEXT;
