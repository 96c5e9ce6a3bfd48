-- SQLite only (its planner needs `deleted` to lead the partial ordering index):
-- PostgreSQL already reads the served list_some through weave_message_live_ordering.
SELECT 1;
