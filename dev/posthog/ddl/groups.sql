-- clickhouse_groups -> groups.
CREATE TABLE IF NOT EXISTS {database}.groups
(
    group_type_index UInt8,
    group_key String,
    created_at DateTime64(3),
    team_id Int64,
    group_properties String,
    _timestamp DateTime,
    _offset UInt64
)
ENGINE = ReplacingMergeTree(_timestamp)
ORDER BY (team_id, group_type_index, group_key)
SETTINGS non_replicated_deduplication_window = 1000
