// Owns mixed traffic: several topics' messages interleaved in a seeded order, and how a total is
// shared out over the topics (events dominate, as in PostHog).
import type { GeneratedMessage, GenerateOptions, PosthogTopic } from './topics.ts';
import { ALL_TOPICS, TOPICS } from './topics.ts';
import { Rng, hash3 } from './random.ts';
import { generate } from './generate.ts';

export interface MixedTrafficOptions extends Omit<GenerateOptions, 'count'> {
  perTopicCounts: Partial<Record<PosthogTopic, number>>;
}

/** Default shares of a mixed stream (events dominate, as in PostHog). */
export const MIXED_SHARES: Readonly<Record<PosthogTopic, number>> = {
  clickhouse_events_json: 0.6,
  clickhouse_session_recording_events: 0.1,
  plugin_log_entries: 0.08,
  clickhouse_person: 0.06,
  clickhouse_person_distinct_id: 0.06,
  clickhouse_groups: 0.03,
  clickhouse_app_metrics: 0.05,
  events_dead_letter_queue: 0.02,
};

/** Split `total` messages over the topics by MIXED_SHARES (every topic gets at least one). */
export function mixedCounts(total: number): Record<PosthogTopic, number> {
  const out = {} as Record<PosthogTopic, number>;
  let left = total;
  for (const topic of ALL_TOPICS) {
    if (topic === TOPICS.events) continue;
    const n = Math.max(1, Math.floor(total * MIXED_SHARES[topic]));
    out[topic] = n;
    left -= n;
  }
  out[TOPICS.events] = Math.max(0, left);
  return out;
}

/**
 * Messages of several topics interleaved in a deterministic random order. Each topic's sequence is
 * the same as generate(topic, { ...options, count }) would give.
 */
export function* mixedTraffic(options: MixedTrafficOptions): Generator<GeneratedMessage> {
  const sources: { it: Generator<GeneratedMessage>; left: number }[] = [];
  let total = 0;
  for (const topic of ALL_TOPICS) {
    const count = options.perTopicCounts[topic] ?? 0;
    if (count <= 0) continue;
    sources.push({ it: generate(topic, { ...options, count }), left: count });
    total += count;
  }
  const rng = new Rng(hash3(options.seed >>> 0, 0x313, 0x717));
  while (total > 0) {
    let r = rng.int(total);
    let chosen = sources[0];
    for (const source of sources) {
      if (r < source.left) {
        chosen = source;
        break;
      }
      r -= source.left;
    }
    if (chosen === undefined) break;
    const next = chosen.it.next();
    chosen.left--;
    total--;
    if (!next.done) yield next.value;
  }
}
