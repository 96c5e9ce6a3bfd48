-- The partial ordering index of live messages, led by `deleted`. SQLite 3.53 plans
-- `WHERE deleted = false ORDER BY updated DESC, id DESC LIMIT n` through the index
-- that gives it an equality on `deleted` (`soft_deletes_ignore`) and sorts every live
-- row, rather than through a partial index whose only match is its own `WHERE`. With
-- `deleted` as its first column, this index gives both the equality and the order:
-- the served list_some reads 100 rows of it (`demo bench`: 12.0 ms -> 0.3 ms).
DROP INDEX weave_message_live_ordering;
CREATE INDEX weave_message_live_ordering ON weave_message (deleted, updated DESC, id DESC) WHERE deleted = false;
