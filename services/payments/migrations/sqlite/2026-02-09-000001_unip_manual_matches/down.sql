DROP TABLE unip_manual_matches;
