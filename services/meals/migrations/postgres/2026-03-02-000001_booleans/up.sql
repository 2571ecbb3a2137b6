-- Flags are booleans, not 0/1 integers.
ALTER TABLE students ALTER COLUMN home_schooled DROP DEFAULT, ALTER COLUMN home_schooled TYPE BOOLEAN USING home_schooled <> 0, ALTER COLUMN home_schooled SET DEFAULT FALSE;
ALTER TABLE students ALTER COLUMN active DROP DEFAULT, ALTER COLUMN active TYPE BOOLEAN USING active <> 0, ALTER COLUMN active SET DEFAULT TRUE;
ALTER TABLE complexes ALTER COLUMN current TYPE BOOLEAN USING current <> 0;
ALTER TABLE extras ALTER COLUMN active TYPE BOOLEAN USING active <> 0;
ALTER TABLE day_menus ALTER COLUMN is_default TYPE BOOLEAN USING is_default <> 0;
ALTER TABLE orders ALTER COLUMN confirmed TYPE BOOLEAN USING confirmed <> 0;
ALTER TABLE attendance ALTER COLUMN present TYPE BOOLEAN USING present <> 0;
ALTER TABLE meal_requests ALTER COLUMN closed TYPE BOOLEAN USING closed <> 0;
ALTER TABLE request_lines ALTER COLUMN included TYPE BOOLEAN USING included <> 0;
ALTER TABLE request_lines ALTER COLUMN ate TYPE BOOLEAN USING ate <> 0;
ALTER TABLE day_closes ALTER COLUMN late TYPE BOOLEAN USING late <> 0;
