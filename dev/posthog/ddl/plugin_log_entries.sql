-- plugin_log_entries -> plugin_log_entries.
-- PARTITION BY plugin_id: one insert block spanning more than max_partitions_per_insert_block (100)
-- distinct plugin_ids is rejected (TOO_MANY_PARTS).
CREATE TABLE IF NOT EXISTS {database}.plugin_log_entries
(
    id UUID,
    team_id Int64,
    plugin_id Int64,
    plugin_config_id Int64,
    timestamp DateTime64(6, 'UTC'),
    source String,
    type String,
    message String,
    instance_id UUID,
    _timestamp DateTime,
    _offset UInt64
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY plugin_id
ORDER BY (team_id, id)
TTL toDate(timestamp) + INTERVAL 1 WEEK
SETTINGS non_replicated_deduplication_window = 1000
