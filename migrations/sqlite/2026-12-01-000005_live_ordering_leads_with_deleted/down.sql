DROP INDEX weave_message_live_ordering;
CREATE INDEX weave_message_live_ordering ON weave_message (updated DESC, id DESC) WHERE deleted = false;
