-- longops schema, version 6 (SQLite): telemetry. The W3C trace context of the span that
-- enqueued an operation (its `traceparent`), so that each attempt's `process` span joins the
-- trace of the request that created it, whichever process runs it and however much later.
ALTER TABLE longops_operations ADD COLUMN trace_context TEXT;
