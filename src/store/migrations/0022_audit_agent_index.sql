-- Gatehouse schema, version 22: the log by agent, indexed at idle. Each
-- event's entry in an index by agent went next to its agent's last: with
-- several agents at work (refreshing tokens, calling tools), every commit
-- wrote a page of that index for each of them. `audit_by_agent` holds the
-- same (agent, event) pairs, added by the writer when idle with the text
-- index and up to the same event (`audit_text_indexed.upto`): a view of one
-- agent reads it up to there and scans the few events above, as a text
-- search does. Deleting or changing an event it holds takes it out.
CREATE TABLE audit_by_agent (
    client_id  TEXT NOT NULL,
    id         INTEGER NOT NULL,
    PRIMARY KEY (client_id, id)
) WITHOUT ROWID;
INSERT INTO audit_by_agent (client_id, id)
    SELECT client_id, id FROM audit_events
    WHERE client_id IS NOT NULL AND id <= (SELECT upto FROM audit_text_indexed);
CREATE TRIGGER audit_by_agent_delete AFTER DELETE ON audit_events
WHEN old.client_id IS NOT NULL AND old.id <= (SELECT upto FROM audit_text_indexed) BEGIN
    DELETE FROM audit_by_agent WHERE client_id = old.client_id AND id = old.id;
END;
CREATE TRIGGER audit_by_agent_update AFTER UPDATE OF client_id ON audit_events
WHEN old.id <= (SELECT upto FROM audit_text_indexed) BEGIN
    DELETE FROM audit_by_agent WHERE client_id = old.client_id AND id = old.id;
    INSERT INTO audit_by_agent (client_id, id)
        SELECT new.client_id, new.id WHERE new.client_id IS NOT NULL;
END;
DROP INDEX audit_events_client;
