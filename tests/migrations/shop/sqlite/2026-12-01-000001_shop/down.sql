DROP TABLE shop_ledger.entry;
DROP TABLE shop_line;
DROP TABLE "order";
DROP TABLE shop_customer;
DROP TABLE shop_product;
DROP TABLE shop_warehouse;
