-- Lists are read newest first (the models' default ordering, `updated DESC, id DESC`).
-- With these, the first page is an index scan that stops after its rows however large
-- the table grows (`demo scaling`); without them, every page sorts the whole table.
CREATE INDEX weave_message_ordering ON weave_message (updated DESC, id DESC);
CREATE INDEX weave_thread_ordering ON weave_thread (updated DESC, id DESC);
