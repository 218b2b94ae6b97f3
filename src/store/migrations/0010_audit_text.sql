-- Gatehouse schema, version 10: the timeline's text search through an index.
-- A trigram full-text index over the columns the search reads gives the same
-- answers as a case-insensitive substring match (for 3 characters or more)
-- without scanning every event. It holds no copy of the text (content is the
-- audit_events table) and is kept by triggers.
CREATE VIRTUAL TABLE audit_text USING fts5(
    agent, server, tool, kind, actor, detail,
    content = 'audit_events', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO audit_text (audit_text) VALUES ('rebuild');
CREATE TRIGGER audit_text_insert AFTER INSERT ON audit_events BEGIN
    INSERT INTO audit_text (rowid, agent, server, tool, kind, actor, detail)
    VALUES (new.id, new.agent, new.server, new.tool, new.kind, new.actor, new.detail);
END;
CREATE TRIGGER audit_text_delete AFTER DELETE ON audit_events BEGIN
    INSERT INTO audit_text (audit_text, rowid, agent, server, tool, kind, actor, detail)
    VALUES ('delete', old.id, old.agent, old.server, old.tool, old.kind, old.actor, old.detail);
END;
CREATE TRIGGER audit_text_update AFTER UPDATE OF agent, server, tool, kind, actor, detail ON audit_events BEGIN
    INSERT INTO audit_text (audit_text, rowid, agent, server, tool, kind, actor, detail)
    VALUES ('delete', old.id, old.agent, old.server, old.tool, old.kind, old.actor, old.detail);
    INSERT INTO audit_text (rowid, agent, server, tool, kind, actor, detail)
    VALUES (new.id, new.agent, new.server, new.tool, new.kind, new.actor, new.detail);
END;
