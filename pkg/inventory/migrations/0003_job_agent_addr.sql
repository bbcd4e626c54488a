-- 0003: a job remembers the address its agent spoke from first (the
-- owner of the job's task when metald does not hand out addresses).
ALTER TABLE jobs ADD COLUMN agent_addr TEXT NOT NULL DEFAULT '';
