-- Gatehouse schema, version 8: a grant whose agent may see the tools it was
-- not granted (marked as needing approval) and ask for one by calling it.
ALTER TABLE grants ADD COLUMN may_ask_more INTEGER NOT NULL DEFAULT 0;
