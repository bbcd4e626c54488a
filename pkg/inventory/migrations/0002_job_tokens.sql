-- 0002: jobs carry the agent's task token (sealed, and hashed for lookup)
-- and a user-data blob for the installed OS.
ALTER TABLE jobs ADD COLUMN token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN token_sealed BLOB;
ALTER TABLE jobs ADD COLUMN finished_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_token ON jobs(token_hash);
