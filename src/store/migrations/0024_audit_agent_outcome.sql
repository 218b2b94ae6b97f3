-- Gatehouse schema, version 24: the index by agent holds each event's
-- outcome, so a view of one agent's events of one outcome ("what was this
-- agent denied?") tests it in the index and reads from the log only the
-- events that have it, not every event of the agent.
ALTER TABLE audit_by_agent ADD COLUMN outcome TEXT;
UPDATE audit_by_agent SET outcome =
    (SELECT outcome FROM audit_events WHERE audit_events.id = audit_by_agent.id);
-- An event whose agent, outcome or id is changed (by hand: Gatehouse does
-- none of these) is held as it is now, where the index reaches; above it,
-- the index pass takes it as it is when it gets there.
DROP TRIGGER IF EXISTS audit_by_agent_update;
CREATE TRIGGER audit_by_agent_update AFTER UPDATE OF id, client_id, outcome ON audit_events
WHEN old.id <= (SELECT agents_upto FROM audit_text_indexed)
    OR new.id <= (SELECT agents_upto FROM audit_text_indexed) BEGIN
    DELETE FROM audit_by_agent WHERE client_id = old.client_id AND id = old.id;
    INSERT OR IGNORE INTO audit_by_agent (client_id, id, outcome)
        SELECT new.client_id, new.id, new.outcome
        WHERE new.client_id IS NOT NULL
            AND new.id <= (SELECT agents_upto FROM audit_text_indexed);
END;
