ALTER TABLE accounts DROP COLUMN class_id;
