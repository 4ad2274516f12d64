-- clickhouse_app_metrics -> app_metrics.
-- allow_dimensions_outside_sorting_key: ClickHouse 26.x refuses an AggregatingMergeTree whose plain
-- columns (error_details, _timestamp, _offset, _partition) are outside ORDER BY unless this is set;
-- PostHog's table has exactly that layout (those columns keep an arbitrary row's value on merge).
CREATE TABLE IF NOT EXISTS {database}.app_metrics
(
    team_id Int64,
    timestamp DateTime64(6, 'UTC'),
    plugin_config_id Int64,
    category LowCardinality(String),
    job_id String,
    successes SimpleAggregateFunction(sum, Int64),
    successes_on_retry SimpleAggregateFunction(sum, Int64),
    failures SimpleAggregateFunction(sum, Int64),
    error_uuid UUID,
    error_type String,
    error_details String CODEC(ZSTD(3)),
    _timestamp DateTime,
    _offset UInt64,
    _partition UInt64
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, plugin_config_id, job_id, category, toStartOfHour(timestamp), error_type, error_uuid)
SETTINGS non_replicated_deduplication_window = 1000, allow_dimensions_outside_sorting_key = 1
