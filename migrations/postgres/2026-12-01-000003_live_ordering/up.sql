-- The default queryset hides soft-deleted messages (`deleted = false`) and reads them
-- newest first. Without this index SQLite plans such a page through the partial index
-- `soft_deletes_ignore` and sorts every live row; with it, the first page and a keyset
-- page at any depth are one range of this index (`cargo bench -p orm --bench keyset_depth`).
CREATE INDEX weave_message_live_ordering ON weave_message (updated DESC, id DESC) WHERE deleted = false;
