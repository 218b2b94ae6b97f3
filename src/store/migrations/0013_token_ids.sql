-- Gatehouse schema, version 13: fewer pages written per token. A token
-- issued from now on carries its row id (`gh_rt_<id>.<secret>`) and is
-- found by it; its hash is checked, not indexed, so a new token adds no
-- entry to a hash index at a random page. Tokens issued before keep
-- working: they are found by their hash, in an index that holds only them.
-- A token family (one per authorization code) names its client and grant
-- once, in `token_families`; revoking an agent's, a grant's or a replayed
-- code's tokens goes through it, so `tokens` needs no index but the family.
CREATE TABLE token_families (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(client_id),
    grant_id    TEXT NOT NULL REFERENCES grants(id),
    code_hash   TEXT                       -- the authorization code that began it
);
INSERT INTO token_families (id, client_id, grant_id, code_hash)
    SELECT family_id, MIN(client_id), MIN(grant_id), MIN(code_hash) FROM tokens GROUP BY family_id;
CREATE INDEX token_families_client ON token_families(client_id);
CREATE INDEX token_families_grant ON token_families(grant_id);
CREATE INDEX token_families_code ON token_families(code_hash);

-- `client_id` and `grant_id` stay on each token for the live state's reads,
-- unindexed: nothing deletes a client or a grant (they are revoked, or marked
-- removed), so their foreign keys never have to find a client's tokens.
CREATE TABLE tokens_by_id (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL,
    found_by_hash INTEGER NOT NULL DEFAULT 0, -- issued before version 13: its text has no id
    kind         TEXT NOT NULL,               -- access | refresh
    client_id    TEXT NOT NULL REFERENCES clients(client_id),
    grant_id     TEXT NOT NULL REFERENCES grants(id),
    family_id    TEXT NOT NULL REFERENCES token_families(id),
    code_hash    TEXT,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    rotated_at   INTEGER,
    revoked_at   INTEGER
);
INSERT INTO tokens_by_id (id, token_hash, found_by_hash, kind, client_id, grant_id, family_id,
                          code_hash, issued_at, expires_at, rotated_at, revoked_at)
    SELECT rowid, token_hash, 1, kind, client_id, grant_id, family_id,
           code_hash, issued_at, expires_at, rotated_at, revoked_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_by_id RENAME TO tokens;
CREATE INDEX tokens_family ON tokens(family_id);
CREATE INDEX tokens_by_hash ON tokens(token_hash) WHERE found_by_hash = 1;
