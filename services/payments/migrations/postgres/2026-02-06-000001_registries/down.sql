ALTER TABLE bank_payments DROP COLUMN registry_id;
DROP TABLE registry_items;
DROP TABLE registries;
