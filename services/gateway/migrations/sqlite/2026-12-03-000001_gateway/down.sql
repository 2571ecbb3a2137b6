DROP TABLE message_log_head;
DROP TABLE message_log;
DROP TABLE gateway_audit;
DROP TABLE participant_rights;
DROP TABLE participants;
