-- longops schema, version 4: idempotent enqueue over HTTP. A client that sends an
-- Operation-Id gets that id; the hash of what it asked for tells a retry (the same request)
-- from a conflict (another request under the same id).
ALTER TABLE longops_operations ADD COLUMN request_hash TEXT;
