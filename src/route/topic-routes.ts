// Owns what the per-record path needs of a record's topic, built once per topic: its routes with
// their decoders, whether any decoder must prepare a record first (a schema to load), and the topic's
// consumed counters. Records come in runs of one topic, so a record costs a comparison with the
// previous record's topic instead of map lookups by topic and by route.
import type { RouteConfig } from '../config/load.ts';
import type { Decoder } from '../decode/types.ts';

type Counter = { inc(n?: number): void };

export interface TopicRoute {
  readonly route: RouteConfig;
  readonly decoder: Decoder;
}

export interface TopicRoutes {
  readonly topic: string;
  readonly routes: readonly TopicRoute[];
  /** Some decoder of the topic has `prepare` (else a record never waits before it is tracked). */
  readonly prepares: boolean;
  readonly messages: Counter;
  readonly bytes: Counter;
}

export class TopicRouting {
  readonly #routes: readonly TopicRoute[];
  readonly #counters: (topic: string) => { messages: Counter; bytes: Counter };
  readonly #byTopic = new Map<string, TopicRoutes>();
  #last: TopicRoutes | undefined;

  /** `counters`: the topic's consumed counters, asked once per topic. */
  constructor(routes: readonly TopicRoute[], counters: (topic: string) => { messages: Counter; bytes: Counter }) {
    this.#routes = routes;
    this.#counters = counters;
  }

  /** The routes of `topic` (none for a topic no route reads), in configuration order. */
  of(topic: string): TopicRoutes {
    const last = this.#last;
    if (last !== undefined && last.topic === topic) return last;
    let entry = this.#byTopic.get(topic);
    if (entry === undefined) {
      const routes = this.#routes.filter((r) => r.route.topic === topic);
      entry = { topic, routes, prepares: routes.some((r) => r.decoder.prepare !== undefined), ...this.#counters(topic) };
      this.#byTopic.set(topic, entry);
    }
    this.#last = entry;
    return entry;
  }
}
