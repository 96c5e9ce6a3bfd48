DROP TABLE shop_transfer;
