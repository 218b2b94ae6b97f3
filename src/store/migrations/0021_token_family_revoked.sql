-- Gatehouse schema, version 21: a token family is revoked in its own row.
-- A token works while neither it nor its family is revoked. Revoking a
-- family (a reused refresh token, a replayed code, a grant, an agent)
-- writes one row however many tokens it holds, and a new token adds no
-- entry to an index by family: with several agents refreshing at once,
-- that index cost each of them a page of its own in every commit. Tokens
-- revoked one by one before stay revoked in their own rows.
ALTER TABLE token_families ADD COLUMN revoked_at INTEGER;
DROP INDEX tokens_family;
