DROP TABLE acquiring_refunds;
DROP TABLE acquiring_orders;
DROP TABLE acquiring_organizers;
