-- Gatehouse schema, version 7: the program seen on the other end of the
-- connection (see src/peer.rs), kept for an agent (the one that registered it)
-- and for a grant (the one that asked for it, or that first redeemed its code).
-- `owner` is 'client:<client_id>' or 'grant:<grant_id>'; `program` is JSON.
CREATE TABLE programs (
    owner   TEXT PRIMARY KEY,
    program TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
