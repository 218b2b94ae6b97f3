-- Gatehouse schema, version 14: an agent's events by time, in place of all
-- events by time. A view of one agent's events since a moment (the
-- timeline's "last hour") reads here the lowest id such an event has, and
-- walks that agent's events down to it and no further, instead of to the
-- agent's first event. Nothing else read the index of all events by time:
-- views walk ids, and retention by age walks the oldest events up to the
-- first one it keeps.
CREATE INDEX audit_events_client_at ON audit_events(client_id, at);
DROP INDEX audit_events_at;
