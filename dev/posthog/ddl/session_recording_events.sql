-- clickhouse_session_recording_events -> session_recording_events.
CREATE TABLE IF NOT EXISTS {database}.session_recording_events
(
    uuid UUID,
    timestamp DateTime64(6, 'UTC'),
    team_id Int64,
    distinct_id String,
    session_id String,
    window_id String,
    snapshot_data String,
    created_at DateTime64(6, 'UTC'),
    has_full_snapshot Int8 MATERIALIZED JSONExtractBool(snapshot_data, 'has_full_snapshot'),
    _timestamp DateTime,
    _offset UInt64
)
ENGINE = ReplacingMergeTree(_timestamp)
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (team_id, toHour(timestamp), session_id, timestamp, uuid)
TTL toDate(created_at) + INTERVAL 3 WEEK
SETTINGS non_replicated_deduplication_window = 1000
