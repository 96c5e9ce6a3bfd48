DROP TABLE shop_note;
DROP TYPE shop_mood;
