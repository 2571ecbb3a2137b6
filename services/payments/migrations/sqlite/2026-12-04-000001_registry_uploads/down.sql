DROP TABLE registry_uploads;
