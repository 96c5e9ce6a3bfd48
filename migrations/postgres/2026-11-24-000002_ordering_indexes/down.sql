DROP INDEX weave_thread_ordering;
DROP INDEX weave_message_ordering;
