DROP TABLE signed_bodies;
