DROP INDEX bank_payments_day;
CREATE INDEX bank_payments_day ON bank_payments (bank, banking_day);
