DROP TABLE connection_steps;
DROP TABLE connections;
