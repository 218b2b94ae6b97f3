-- Gatehouse schema, version 23: the index by agent goes ahead of the text
-- index. The writer's idle pass adds 16 times as many events to it as to
-- the text index, so under steady writes a view of one agent keeps to its
-- index while searches scan what the text index has not reached.
-- `agents_upto` is the newest event `audit_by_agent` holds (every agent's
-- event up to it, none above); the text index never passes it, so a search
-- with an agent walks it as far as the text index reaches.
ALTER TABLE audit_text_indexed ADD COLUMN agents_upto INTEGER NOT NULL DEFAULT 0;
UPDATE audit_text_indexed SET agents_upto = upto;
DROP TRIGGER audit_by_agent_delete;
DROP TRIGGER audit_by_agent_update;
CREATE TRIGGER audit_by_agent_delete AFTER DELETE ON audit_events
WHEN old.client_id IS NOT NULL AND old.id <= (SELECT agents_upto FROM audit_text_indexed) BEGIN
    DELETE FROM audit_by_agent WHERE client_id = old.client_id AND id = old.id;
END;
CREATE TRIGGER audit_by_agent_update AFTER UPDATE OF client_id ON audit_events
WHEN old.id <= (SELECT agents_upto FROM audit_text_indexed) BEGIN
    DELETE FROM audit_by_agent WHERE client_id = old.client_id AND id = old.id;
    INSERT INTO audit_by_agent (client_id, id)
        SELECT new.client_id, new.id WHERE new.client_id IS NOT NULL;
END;
