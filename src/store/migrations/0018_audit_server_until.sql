-- Gatehouse schema, version 18: the log by server, and where a time range
-- ends.
--
-- A view of one server's events (the timeline's server filter) reads them
-- from this index in id order and stops at its page, instead of walking the
-- whole log for a server that has few; each event costs one more index
-- entry, next to its server's last.
CREATE INDEX audit_events_server ON audit_events(server);

-- Each block of 4,096 ids (version 15) also records its oldest time. A view
-- until a moment skips the newest blocks whose oldest time is not before it
-- (none of their events can be in the range): a walk of the log, newest
-- first, starts where the range ends. Ids follow time only as far as the
-- clock did, so this is read, not assumed.
ALTER TABLE audit_time_blocks ADD COLUMN oldest INTEGER;
UPDATE audit_time_blocks SET oldest =
    (SELECT MIN(at) FROM audit_events WHERE id BETWEEN block * 4096 AND block * 4096 + 4095);
