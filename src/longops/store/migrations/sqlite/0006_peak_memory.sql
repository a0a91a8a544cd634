-- longops schema, version 6 (SQLite): the peak resident memory of an attempt's child
-- process, in bytes (process isolation only; NULL for thread tasks and for runs whose child
-- died before it could report).
ALTER TABLE longops_attempts ADD COLUMN peak_rss INTEGER
    CONSTRAINT attempt_peak_rss CHECK (peak_rss >= 0);
