DROP INDEX weave_message_live_thread;
