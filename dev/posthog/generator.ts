// Deterministic, realistic PostHog Kafka traffic for the eight topics the inserter consumes.
//
// Every message matches the shapes in shared/posthog-topics.md: JSON objects whose nested objects
// (properties, person_properties, snapshot_data, ...) are JSON *strings*, timestamps as
// `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC strings, and the extra fields PostHog's producers send that have
// no column (events: project_id, captured_at; groups: version). Output depends only on the seed and
// options: a small mulberry32 PRNG drives everything, there is no Math.random and no clock.
//
// Events are built as strings by hand (about 4x faster than JSON.stringify of objects) from values
// that never need JSON escaping; the unit test parses every message to keep that honest.
//
// This module owns the generator's public API, the one place importers use; the parts live in
// generator/: topics.ts (names and shapes), random.ts, ids-and-times.ts, vocabulary.ts, world.ts (the
// state one call shares), one builder module per kind of topic, generate.ts, mixed-traffic.ts and
// corrupt.ts.

export type { GeneratedMessage, GenerateOptions, PosthogTopic } from './generator/topics.ts';
export { ALL_TOPICS, TOPICS, isPosthogTopic } from './generator/topics.ts';
export { Rng } from './generator/random.ts';
export { generate, generateValues } from './generator/generate.ts';
export type { MixedTrafficOptions } from './generator/mixed-traffic.ts';
export { MIXED_SHARES, mixedCounts, mixedTraffic } from './generator/mixed-traffic.ts';
export { corrupt } from './generator/corrupt.ts';
