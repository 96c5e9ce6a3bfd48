-- A thread's live messages, counted for each thread of a list
-- (`Thread::messages().count()`: a subquery per thread): with this partial index
-- the count of one thread is a range of the index alone.
CREATE INDEX weave_message_live_thread ON weave_message (thread_id) WHERE deleted = false;
