DROP TABLE weave_message;
DROP TABLE weave_thread;
DROP TABLE weave_person;
