DROP INDEX CONCURRENTLY IF EXISTS weave_message_live_thread;
