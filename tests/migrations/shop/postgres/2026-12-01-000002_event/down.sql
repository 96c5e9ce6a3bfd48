DROP TABLE shop_event;
