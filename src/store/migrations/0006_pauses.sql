-- Gatehouse schema, version 6: paused agents. A row per pause in force:
-- `target` is '*' (every agent) or one agent's client id. Pausing survives a restart.
CREATE TABLE pauses (
    target    TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL,
    paused_by TEXT NOT NULL
);
