-- Flags are booleans, not 0/1 integers.
ALTER TABLE accounts ALTER COLUMN active DROP DEFAULT, ALTER COLUMN active TYPE BOOLEAN USING active <> 0, ALTER COLUMN active SET DEFAULT TRUE;
ALTER TABLE unip_suppliers ALTER COLUMN configured DROP DEFAULT, ALTER COLUMN configured TYPE BOOLEAN USING configured <> 0, ALTER COLUMN configured SET DEFAULT FALSE;
