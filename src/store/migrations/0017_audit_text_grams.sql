-- Gatehouse schema, version 17: searches of one or two characters through
-- the text index. The trigram index answers no query shorter than three
-- characters, so such a search scanned every event. `audit_text_grams` holds
-- each distinct trigram of the searched columns (ASCII letters lowercased)
-- and each whole value shorter than three characters; a short search looks
-- up the trigrams that hold it and asks the index for any of them.
-- `grams_upto` is the newest event whose grams are in the table; they are
-- added after the events are committed, as the index is, from the oldest.
-- Retention cuts events, not grams.
-- A search looks its text up where it can stand in a gram (first, second or
-- third character on), each by an index, not by reading every gram.
CREATE TABLE audit_text_grams (gram TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE INDEX audit_text_grams_from_2 ON audit_text_grams (substr(gram, 2));
CREATE INDEX audit_text_grams_from_3 ON audit_text_grams (substr(gram, 3));
ALTER TABLE audit_text_indexed ADD COLUMN grams_upto INTEGER NOT NULL DEFAULT 0;
-- How many grams the table holds: it takes none past a cap (`MAX_GRAMS_HELD`).
ALTER TABLE audit_text_indexed ADD COLUMN grams_held INTEGER NOT NULL DEFAULT 0;
