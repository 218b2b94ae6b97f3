-- Gatehouse schema, version 9: rules the person keeps for an agent ("always
-- allow its read-only tools", "always ask for destructive ones", "never this
-- tool"), applied when the agent asks for tools. `target` is a risk class
-- ('read', 'write', 'destructive') or 'tool:<name>'; `server` NULL means any.
CREATE TABLE rules (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    server     TEXT,
    target     TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'ask', 'deny')),
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX rules_by_client ON rules (client_id);
