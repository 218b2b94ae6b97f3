-- Gatehouse schema, version 5: a client the person removed (`gatehouse clients rm`)
-- stays in the table for its history, and can never authenticate again.
ALTER TABLE clients ADD COLUMN removed_at INTEGER;
