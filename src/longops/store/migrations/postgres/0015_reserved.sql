-- longops: compatible, online
-- PLACEHOLDER on branch pages-list only (migrations must be numbered without gaps, and this
-- branch's is 0017): drop this file at merge, the branch owning number 15 brings the real one.
SELECT 1;
