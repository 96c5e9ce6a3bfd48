-- The default queryset hides soft-deleted messages (`deleted = false`) and reads them
-- newest first: with this partial index the first page and a keyset page at any depth
-- are one range of it (`cargo bench -p orm --bench keyset_depth`). Built CONCURRENTLY
-- (writes go on meanwhile), so this migration runs outside a transaction
-- (metadata.toml).
CREATE INDEX CONCURRENTLY IF NOT EXISTS weave_message_live_ordering ON weave_message (updated DESC, id DESC) WHERE deleted = false;
