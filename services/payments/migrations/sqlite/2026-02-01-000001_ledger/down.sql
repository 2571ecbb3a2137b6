DROP TABLE balances;
DROP TABLE postings;
DROP TABLE movements;
DROP TABLE accounts;
