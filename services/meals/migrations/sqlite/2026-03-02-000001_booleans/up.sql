-- SQLite has no boolean type: diesel keeps a Bool as 0/1, which these
-- INTEGER columns already hold. Nothing to change (the PostgreSQL migration
-- of the same name turns them into BOOLEAN).
SELECT 1;
