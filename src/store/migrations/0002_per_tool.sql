-- Gatehouse schema, version 2: per-tool access (step-up, ask every time, tool pinning).

-- A step-up request extends this grant instead of creating a new one.
ALTER TABLE consent_requests ADD COLUMN base_grant_id TEXT REFERENCES grants(id);

-- Tools whose every call is held for the person's decision (JSON array of names).
ALTER TABLE grants ADD COLUMN ask_tools TEXT NOT NULL DEFAULT '[]';

-- The definition of each granted tool as the person saw it (rug-pull protection).
CREATE TABLE tool_pins (
    grant_id      TEXT NOT NULL REFERENCES grants(id),
    tool          TEXT NOT NULL,
    hash          TEXT NOT NULL,
    definition    TEXT NOT NULL,           -- JSON
    suspended_at  INTEGER,                 -- the upstream changed it; blocked until re-approved
    PRIMARY KEY (grant_id, tool)
);

-- A pinned tool that changed upstream, waiting for the person.
CREATE TABLE tool_reviews (
    id              TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    server          TEXT NOT NULL,
    tool            TEXT NOT NULL,
    old_definition  TEXT NOT NULL,
    new_definition  TEXT NOT NULL,
    new_hash        TEXT NOT NULL,
    status          TEXT NOT NULL,         -- pending | approved | denied
    created_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    decided_by      TEXT
);
CREATE INDEX tool_reviews_status ON tool_reviews(status);

-- A call to an ask-every-time tool, held for the person's decision.
CREATE TABLE held_calls (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(client_id),
    server      TEXT NOT NULL,
    grant_id    TEXT NOT NULL REFERENCES grants(id),
    tool        TEXT NOT NULL,
    arguments   TEXT NOT NULL,             -- JSON, redacted and size-capped
    status      TEXT NOT NULL,             -- pending | allowed | denied | expired
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT
);
CREATE INDEX held_calls_status ON held_calls(status);
