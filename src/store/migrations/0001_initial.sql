-- Gatehouse schema, version 1.

CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    -- 'registered' (RFC 7591, self-asserted), 'metadata_document' (CIMD over https), 'preconfigured'
    kind           TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,          -- JSON array
    auth_method    TEXT NOT NULL,          -- none | client_secret_post | client_secret_basic
    secret_hash    TEXT,                   -- SHA-256 of the client secret, for confidential clients
    bound_server   TEXT,
    metadata       TEXT NOT NULL,          -- JSON: what the client registered
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER
);

CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(client_id),
    server      TEXT NOT NULL,
    tools       TEXT NOT NULL,             -- JSON array of tool names
    scope       TEXT NOT NULL,
    duration    TEXT NOT NULL,             -- once | timed | forever
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    decided_by  TEXT NOT NULL
);
CREATE INDEX grants_client ON grants(client_id);

CREATE TABLE consent_requests (
    id              TEXT PRIMARY KEY,
    handle_hash     TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    server          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    redirect_uri_given INTEGER NOT NULL,
    state           TEXT,
    code_challenge  TEXT NOT NULL,
    scope           TEXT,
    tools           TEXT NOT NULL,         -- JSON array of ToolInfo the request would reach
    phrase          TEXT NOT NULL,
    status          TEXT NOT NULL,         -- pending | approved | denied | expired | delivered
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    decided_by      TEXT,
    grant_id        TEXT REFERENCES grants(id)
);
CREATE INDEX consent_requests_status ON consent_requests(status);

CREATE TABLE authorization_codes (
    code_hash       TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL REFERENCES consent_requests(id),
    grant_id        TEXT NOT NULL REFERENCES grants(id),
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);

CREATE TABLE tokens (
    token_hash   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,            -- access | refresh
    client_id    TEXT NOT NULL REFERENCES clients(client_id),
    grant_id     TEXT NOT NULL REFERENCES grants(id),
    family_id    TEXT NOT NULL,            -- one per authorization code; rotation stays in it
    code_hash    TEXT,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    rotated_at   INTEGER,                  -- refresh tokens: when exchanged for a new one
    revoked_at   INTEGER
);
CREATE INDEX tokens_family ON tokens(family_id);
CREATE INDEX tokens_grant ON tokens(grant_id);
CREATE INDEX tokens_client ON tokens(client_id);

CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    client_id    TEXT,
    agent        TEXT,
    server       TEXT,
    tool         TEXT,
    grant_id     TEXT,
    actor        TEXT,
    duration_ms  INTEGER,
    detail       TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_client ON audit_events(client_id);
