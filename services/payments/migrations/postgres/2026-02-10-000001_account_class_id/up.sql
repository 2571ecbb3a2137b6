-- A class teacher's scope is a class id (two classes of one school may share a
-- name): the meals service sends it with the account.
ALTER TABLE accounts ADD COLUMN class_id TEXT NOT NULL DEFAULT '';
