-- Gatehouse schema, version 15: where a time range begins in the log, with
-- no index by time. The log is cut into blocks of 4,096 ids (block n holds
-- ids 4,096n to 4,096n + 4,095); when a block's last event is written, the
-- newest time in the block is written here. The first block whose newest
-- time reaches a moment is where events since then begin: every event in an
-- earlier block is older (ids follow time only as far as the clock did, so
-- this is read, not assumed). A view since a moment walks ids down to there
-- and no further, whatever else it filters on; the index of each agent's
-- events by time (version 14) is no longer needed, and an event costs no
-- index entry by time at all.
CREATE TABLE audit_time_blocks (
    block   INTEGER PRIMARY KEY,
    newest  INTEGER NOT NULL
);
INSERT INTO audit_time_blocks (block, newest)
    SELECT id / 4096, MAX(at) FROM audit_events
    WHERE id < (SELECT (MAX(id) + 1) / 4096 * 4096 FROM audit_events)
    GROUP BY id / 4096;
DROP INDEX audit_events_client_at;
