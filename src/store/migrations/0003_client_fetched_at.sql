-- Gatehouse schema, version 3: when a Client ID Metadata Document was last fetched.
ALTER TABLE clients ADD COLUMN fetched_at INTEGER;
