-- Gatehouse schema, version 12: the text index is brought up to date after
-- the events are committed, not inside their transaction (indexing was three
-- quarters of an audit write). `audit_text_indexed.upto` is the newest event
-- in the index; a search reads the index up to it and scans the few events
-- above it. Deleting an event takes it out of the index only if it is in it.
CREATE TABLE audit_text_indexed (upto INTEGER NOT NULL);
INSERT INTO audit_text_indexed (upto) SELECT COALESCE(MAX(id), 0) FROM audit_events;
DROP TRIGGER audit_text_insert;
DROP TRIGGER audit_text_delete;
DROP TRIGGER audit_text_update;
CREATE TRIGGER audit_text_delete AFTER DELETE ON audit_events
WHEN old.id <= (SELECT upto FROM audit_text_indexed) BEGIN
    INSERT INTO audit_text (audit_text, rowid, agent, server, tool, kind, actor, detail)
    VALUES ('delete', old.id, old.agent, old.server, old.tool, old.kind, old.actor, old.detail);
END;
CREATE TRIGGER audit_text_update AFTER UPDATE OF agent, server, tool, kind, actor, detail ON audit_events
WHEN old.id <= (SELECT upto FROM audit_text_indexed) BEGIN
    INSERT INTO audit_text (audit_text, rowid, agent, server, tool, kind, actor, detail)
    VALUES ('delete', old.id, old.agent, old.server, old.tool, old.kind, old.actor, old.detail);
    INSERT INTO audit_text (rowid, agent, server, tool, kind, actor, detail)
    VALUES (new.id, new.agent, new.server, new.tool, new.kind, new.actor, new.detail);
END;
