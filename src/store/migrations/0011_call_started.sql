-- A tool call's outcome names the event recorded when it started
-- (`call_started` in its detail): a view of the log hides a start that has
-- its outcome, so one with none stands out. Indexed for that lookup.
ALTER TABLE audit_events ADD COLUMN started_id INTEGER
    GENERATED ALWAYS AS (json_extract(detail, '$.call_started')) VIRTUAL;
CREATE INDEX audit_events_started ON audit_events(started_id) WHERE started_id IS NOT NULL;
