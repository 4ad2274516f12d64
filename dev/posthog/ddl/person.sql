-- clickhouse_person -> person.
CREATE TABLE IF NOT EXISTS {database}.person
(
    id UUID,
    created_at DateTime64(3),
    team_id Int64,
    properties String,
    is_identified Int8,
    is_deleted Int8,
    version UInt64,
    _timestamp DateTime,
    _offset UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, id)
SETTINGS non_replicated_deduplication_window = 1000
