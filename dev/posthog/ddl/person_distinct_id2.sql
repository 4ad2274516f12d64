-- clickhouse_person_distinct_id -> person_distinct_id2.
CREATE TABLE IF NOT EXISTS {database}.person_distinct_id2
(
    team_id Int64,
    distinct_id String,
    person_id UUID,
    is_deleted Int8,
    version Int64,
    _timestamp DateTime,
    _offset UInt64,
    _partition UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (team_id, distinct_id)
SETTINGS index_granularity = 512, non_replicated_deduplication_window = 1000
