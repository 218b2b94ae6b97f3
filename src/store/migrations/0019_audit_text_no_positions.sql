-- Gatehouse schema, version 19: the trigram index keeps no positions
-- (detail = 'none'): a fifth of its size (it was ~60% of the database) and
-- about half the work to add an event. It answers no phrase then, so a
-- search of three characters or more asks for events holding every trigram
-- of its text, and the LIKE that every search also holds keeps only those
-- that hold the text itself: the index still gives more, never less.
-- The index is built again from the oldest event, after commit, as new
-- events are (`audit_text_indexed.upto`); searches scan what it does not
-- hold yet.
DROP TABLE audit_text;
CREATE VIRTUAL TABLE audit_text USING fts5(
    agent, server, tool, kind, actor, detail,
    content = 'audit_events', content_rowid = 'id', tokenize = 'trigram', detail = 'none'
);
UPDATE audit_text_indexed SET upto = 0;
