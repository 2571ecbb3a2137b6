DROP INDEX registries_bank_date;
CREATE INDEX registries_bank_date ON registries (bank, registry_date);
