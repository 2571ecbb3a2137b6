-- A registry import reads the online payments of its day that it did not
-- mention in pages ordered by transaction id; with the id in the day's index
-- each page starts where the last one stopped instead of sorting the day again.
DROP INDEX bank_payments_day;
CREATE INDEX bank_payments_day ON bank_payments (bank, banking_day, txn_id);
