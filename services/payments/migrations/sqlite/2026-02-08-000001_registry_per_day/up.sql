-- One registry per bank and day: two different files for one day, uploaded
-- at once, cannot both pass the import's look for the other.
DROP INDEX registries_bank_date;
CREATE UNIQUE INDEX registries_bank_date ON registries (bank, registry_date);
