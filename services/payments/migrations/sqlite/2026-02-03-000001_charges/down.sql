DROP TABLE unip_payments;
DROP TABLE unip_charge_parties;
DROP TABLE unip_charges;
DROP TABLE unip_uin_sequence;
DROP TABLE unip_suppliers;
