-- Gatehouse schema, version 25: the server's instructions as the consent
-- window showed them, pinned with the grant its approval makes (JSON of
-- `tools::Instructions`; NULL for a request from before, or a server whose
-- instructions could not be read).
ALTER TABLE consent_requests ADD COLUMN instructions TEXT;
