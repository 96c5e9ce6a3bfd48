-- A thread's live messages, counted for each thread of a list
-- (`Thread::messages().count()`: a subquery per thread). With this partial index the
-- count of one thread is a range of the index alone, not a visit to every message's
-- row (`demo bench`: 1,000 threads with their counts, 57 ms -> 4 ms). Built
-- CONCURRENTLY, so this migration runs outside a transaction (metadata.toml).
CREATE INDEX CONCURRENTLY IF NOT EXISTS weave_message_live_thread ON weave_message (thread_id) WHERE deleted = false;
