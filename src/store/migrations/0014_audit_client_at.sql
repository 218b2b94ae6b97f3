-- Gatehouse schema, version 14: an agent's events by time. A view of one
-- agent's events since a moment (the timeline's "last hour") reads here the
-- lowest id such an event has, and walks that agent's events down to it and
-- no further, instead of to the agent's first event.
CREATE INDEX audit_events_client_at ON audit_events(client_id, at);
