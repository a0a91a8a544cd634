-- longops: compatible, online
-- PLACEHOLDER on branch pagesui only: migration 0016 belongs to another branch (0016 is
-- pgchurn's claim_churn; 0017 is assigned elsewhere). It keeps the numbering without gaps
-- so that pagesui's 0018 loads; on merge, take the other branch's file and drop this one.
SELECT 1;
