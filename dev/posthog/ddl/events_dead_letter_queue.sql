-- events_dead_letter_queue -> events_dead_letter_queue.
CREATE TABLE IF NOT EXISTS {database}.events_dead_letter_queue
(
    id UUID,
    event_uuid UUID,
    event String,
    properties String,
    distinct_id String,
    team_id Int64,
    elements_chain String,
    created_at DateTime64(6, 'UTC'),
    ip String,
    site_url String,
    now DateTime64(6, 'UTC'),
    raw_payload String,
    error_timestamp DateTime64(6, 'UTC'),
    error_location String,
    error String,
    tags Array(String),
    _timestamp DateTime,
    _offset UInt64
)
ENGINE = ReplacingMergeTree(_timestamp)
ORDER BY (id, event_uuid, distinct_id, team_id)
TTL _timestamp + INTERVAL 4 WEEK
SETTINGS index_granularity = 512, non_replicated_deduplication_window = 1000
