-- Gatehouse schema, version 21: a token family is revoked in its own row.
-- A token works while neither it nor its family is revoked. Revoking a
-- family (a reused refresh token, a replayed code, a grant, an agent)
-- writes one row however many tokens it holds, and a new token adds no
-- entry to an index by family: with several agents refreshing at once,
-- that index cost each of them a page of its own in every commit. Tokens
-- revoked one by one before stay revoked in their own rows.
ALTER TABLE token_families ADD COLUMN revoked_at INTEGER;
-- A family revoked before (every one of its tokens marked) is revoked in
-- its row too, so a later revocation does not count it again. A family
-- keeps a token unrevoked (its refresh token) until the family goes.
UPDATE token_families SET revoked_at =
    (SELECT MAX(t.revoked_at) FROM tokens t WHERE t.family_id = token_families.id)
WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = token_families.id)
  AND NOT EXISTS (SELECT 1 FROM tokens t
                  WHERE t.family_id = token_families.id AND t.revoked_at IS NULL);
DROP INDEX tokens_family;
