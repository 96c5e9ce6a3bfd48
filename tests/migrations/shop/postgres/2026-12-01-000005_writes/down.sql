DROP TABLE shop_job;
DROP TABLE shop_tag;
