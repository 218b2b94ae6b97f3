-- Gatehouse schema, version 20: a tool call's start is made durable in the
-- calls' journal (`store/journal.rs`) before the call goes upstream, and
-- moved into the log by the writer's next group commit. `upto` is the
-- highest journal line the log holds with every one before it;
-- `upto_event` the event that recorded it. An event recorded from the
-- journal names its line (`journal_seq`), so one recorded after a refused
-- one is not recorded twice. A line's keyed hash covers this database's
-- `journal_id`, so the journal of another database (one deleted and made
-- anew beside it) is never recorded in this one.
CREATE TABLE audit_journal (
    journal_id TEXT NOT NULL,
    upto INTEGER NOT NULL,
    upto_event INTEGER NOT NULL
);
INSERT INTO audit_journal (journal_id, upto, upto_event) VALUES (lower(hex(randomblob(16))), 0, 0);
ALTER TABLE audit_events ADD COLUMN journal_seq INTEGER;
