-- longops: compatible, online
-- Placeholder on the maint branch only, so that 0013 has a predecessor: the apps branch's
-- 0012_apps.sql (task apps, rolling deploys, the schema guard) takes this file's place.
SELECT 1;
