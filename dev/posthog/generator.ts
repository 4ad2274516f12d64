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

export const TOPICS = {
  events: 'clickhouse_events_json',
  sessionRecordingEvents: 'clickhouse_session_recording_events',
  pluginLogEntries: 'plugin_log_entries',
  person: 'clickhouse_person',
  personDistinctId: 'clickhouse_person_distinct_id',
  groups: 'clickhouse_groups',
  appMetrics: 'clickhouse_app_metrics',
  deadLetterQueue: 'events_dead_letter_queue',
} as const;

export type PosthogTopic = (typeof TOPICS)[keyof typeof TOPICS];

export const ALL_TOPICS: readonly PosthogTopic[] = Object.values(TOPICS);

export function isPosthogTopic(topic: string): topic is PosthogTopic {
  return (ALL_TOPICS as readonly string[]).includes(topic);
}

export interface GeneratedMessage {
  topic: PosthogTopic;
  /** Event uuid for events, id for plugin_log_entries, null for the other topics (as PostHog does). */
  key: Buffer | null;
  value: Buffer;
  headers?: Record<string, Buffer>;
  /** team_id written in the message (0 for corrupt messages without one). */
  teamId: number;
  /** Unique per generated message: the row's uuid, or entity id plus version for versioned rows. */
  id: string;
}

export interface GenerateOptions {
  seed: number;
  count: number;
  /** Number of teams (ids 1..teams, team 1 the busiest). Default 1000. */
  teams?: number;
  /** Zipf exponent of the team distribution. Default 1.2 (top team ~25%, top 10 ~60% with 1000 teams). */
  zipfExponent?: number;
  /**
   * Start of the simulated timeline, ms since the epoch. Default 2030-01-01: fixed for determinism and
   * in the future so the TTLs of session_recording_events (3 weeks) and plugin_log_entries (1 week)
   * don't delete freshly inserted rows. A timestamp in the past beyond those TTLs makes rows vanish.
   */
  baseTime?: number;
  /** Simulated messages per second of the timeline (timestamps advance by 1/rate). Default 1000. */
  ratePerSecond?: number;
  /** Share of session recordings that are large (900–990 KB; always under 1,000,000 bytes). Default 0.02. */
  bigRecordingFraction?: number;
  /** Number of distinct plugin_ids in plugin_log_entries (and plugin_config ids in app_metrics). Default 30. */
  plugins?: number;
  /** Attach Kafka headers (`source`, `team_id`). Default false: PostHog's producers send none here. */
  headers?: boolean;
}

// ---------------------------------------------------------------------------------------------
// PRNG and hashing

/** mulberry32: tiny, fast, good enough for fixtures. */
export class Rng {
  s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform uint32. */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }
}

/** 32-bit integer mix (murmur3 finalizer). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hash3(a: number, b: number, c: number): number {
  return mix32(mix32(mix32(a ^ 0x9e3779b9) ^ b) ^ Math.imul(c, 0x27d4eb2d));
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return mix32(h);
}

// ---------------------------------------------------------------------------------------------
// UUIDs and timestamps

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex8(x: number): string {
  return (HEX[(x >>> 24) & 255] ?? '') + (HEX[(x >>> 16) & 255] ?? '') + (HEX[(x >>> 8) & 255] ?? '') + (HEX[x & 255] ?? '');
}

function formatUuid(a: number, b: number, c: number, d: number): string {
  const hb = hex8(b);
  const hc = hex8(c);
  return `${hex8(a)}-${hb.slice(0, 4)}-${hb.slice(4)}-${hc.slice(0, 4)}-${hc.slice(4)}${hex8(d)}`;
}

/** Random UUIDv4. */
function uuid4(rng: Rng): string {
  const b = (rng.u32() & 0xffff0fff) | 0x00004000;
  const c = ((rng.u32() & 0x3fffffff) | 0x80000000) >>> 0;
  return formatUuid(rng.u32(), b >>> 0, c, rng.u32());
}

/** UUIDv7 for time `ms` (as PostHog's capture assigns event uuids). */
function uuid7(ms: number, rng: Rng): string {
  const hi = Math.floor(ms / 65536) >>> 0;
  const lo = ms % 65536;
  const b = ((lo << 16) | 0x7000 | (rng.u32() & 0x0fff)) >>> 0;
  const c = ((rng.u32() & 0x3fffffff) | 0x80000000) >>> 0;
  return formatUuid(hi, b, c, rng.u32());
}

/** A stable UUIDv4-shaped id derived from (a, b, salt). */
function stableUuid(a: number, b: number, salt: number): string {
  const h1 = hash3(a, b, salt);
  const h2 = mix32(h1 ^ 0x68e31da4);
  const h3 = mix32(h2 ^ 0xb5297a4d);
  const h4 = mix32(h3 ^ 0x1b56c4e9);
  return formatUuid(h1, ((h2 & 0xffff0fff) | 0x4000) >>> 0, ((h3 & 0x3fffffff) | 0x80000000) >>> 0, h4);
}

/** A stable UUIDv7-shaped id for time `ms` derived from (a, b, salt). */
function stableUuid7(ms: number, a: number, b: number, salt: number): string {
  const h1 = hash3(a, b, salt);
  const h2 = mix32(h1 ^ 0x68e31da4);
  const h3 = mix32(h2 ^ 0xb5297a4d);
  const hi = Math.floor(ms / 65536) >>> 0;
  const lo = ms % 65536;
  return formatUuid(hi, ((lo << 16) | 0x7000 | (h1 & 0x0fff)) >>> 0, ((h2 & 0x3fffffff) | 0x80000000) >>> 0, h3);
}

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

// Formatting through Date is the generator's hottest spot, so days are cached and the rest is arithmetic.
const dayCache = new Map<number, string>();

/** `YYYY-MM-DD HH:MM:SS` (UTC) for a whole number of seconds since the epoch. */
function secondString(sec: number): string {
  const day = Math.floor(sec / 86400);
  let date = dayCache.get(day);
  if (date === undefined) {
    date = new Date(day * 86_400_000).toISOString().slice(0, 10);
    if (dayCache.size > 100_000) dayCache.clear();
    dayCache.set(day, date);
  }
  const rem = sec - day * 86400;
  const h = Math.floor(rem / 3600);
  const m = Math.floor((rem - h * 3600) / 60);
  return `${date} ${PAD2[h] ?? '00'}:${PAD2[m] ?? '00'}:${PAD2[rem - h * 3600 - m * 60] ?? '00'}`;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) for ms + micro (0..999). */
function ts6(ms: number, micro: number): string {
  const sec = Math.floor(ms / 1000);
  return `${secondString(sec)}.${PAD3[ms - sec * 1000] ?? '000'}${PAD3[micro] ?? '000'}`;
}

/** `YYYY-MM-DD HH:MM:SS.fff` (UTC). */
function ts3(ms: number): string {
  const sec = Math.floor(ms / 1000);
  return `${secondString(sec)}.${PAD3[ms - sec * 1000] ?? '000'}`;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC). */
function ts0(ms: number): string {
  return secondString(Math.floor(ms / 1000));
}

// ---------------------------------------------------------------------------------------------
// Byte output: values and keys are written into large shared slabs instead of one allocation each.

const SLAB_SIZE = 4 * 1024 * 1024;
const SLAB_MAX_STRING = 256 * 1024;

class SlabWriter {
  slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  offset = 0;
  bytes(text: string): Buffer {
    // Worst case 3 bytes per UTF-16 unit; anything that might not fit gets its own Buffer.
    if (text.length > SLAB_MAX_STRING) return Buffer.from(text, 'utf8');
    if (this.offset + text.length * 3 > SLAB_SIZE) {
      this.slab = Buffer.allocUnsafe(SLAB_SIZE);
      this.offset = 0;
    }
    const n = this.slab.write(text, this.offset, 'utf8');
    const out = this.slab.subarray(this.offset, this.offset + n);
    this.offset += (n + 7) & ~7;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary (all values are JSON-safe: no quotes, backslashes or control characters)

const HOSTS = ['app.acme.io', 'www.shopfront.com', 'dashboard.metrics.dev', 'docs.widgets.co', 'beta.travelly.app', 'portal.finhub.eu', 'learn.cursus.org', 'store.kiosko.mx'];
const PATHS = [
  '/',
  '/pricing',
  '/signup',
  '/login',
  '/dashboard',
  '/settings/billing',
  '/product/analytics',
  '/blog/how-we-scaled-clickhouse',
  '/docs/getting-started',
  '/checkout',
  '/cart',
  '/search',
  '/insights/new',
  '/projects/42/feature_flags',
  '/team/members',
  '/integrations/slack',
  '/careers',
  '/about',
];
const QUERIES = ['', '', '', '?utm_source=google&utm_medium=cpc', '?ref=producthunt', '?q=retention+cohorts', '?page=2', '?plan=scale&period=annual'];
const BROWSERS = [
  ['Chrome', '126'],
  ['Chrome', '125'],
  ['Safari', '17.5'],
  ['Firefox', '127'],
  ['Microsoft Edge', '126'],
  ['Mobile Safari', '17.4'],
  ['Chrome iOS', '126'],
  ['Samsung Internet', '25'],
] as const;
const OSES = [
  ['Mac OS X', '14.5.0'],
  ['Windows', '10.0'],
  ['Linux', ''],
  ['iOS', '17.5.1'],
  ['Android', '14'],
  ['Chrome OS', '15886.44.0'],
] as const;
const DEVICE_TYPES = ['Desktop', 'Desktop', 'Desktop', 'Mobile', 'Mobile', 'Tablet'];
const GEO = [
  ['US', 'United States', 'San Francisco', 'CA', 'California', 'America/Los_Angeles', '37.7749', '-122.4194', 'NA', 'North America'],
  ['US', 'United States', 'New York', 'NY', 'New York', 'America/New_York', '40.7128', '-74.006', 'NA', 'North America'],
  ['DE', 'Germany', 'München', 'BY', 'Bayern', 'Europe/Berlin', '48.1351', '11.582', 'EU', 'Europe'],
  ['GB', 'United Kingdom', 'London', 'ENG', 'England', 'Europe/London', '51.5072', '-0.1276', 'EU', 'Europe'],
  ['BR', 'Brazil', 'São Paulo', 'SP', 'São Paulo', 'America/Sao_Paulo', '-23.5505', '-46.6333', 'SA', 'South America'],
  ['JP', 'Japan', '東京', '13', 'Tokyo', 'Asia/Tokyo', '35.6762', '139.6503', 'AS', 'Asia'],
  ['IN', 'India', 'Bengaluru', 'KA', 'Karnataka', 'Asia/Kolkata', '12.9716', '77.5946', 'AS', 'Asia'],
  ['FR', 'France', 'Paris', 'IDF', 'Île-de-France', 'Europe/Paris', '48.8566', '2.3522', 'EU', 'Europe'],
  ['PL', 'Poland', 'Kraków', '12', 'Lesser Poland', 'Europe/Warsaw', '50.0647', '19.945', 'EU', 'Europe'],
  ['AU', 'Australia', 'Sydney', 'NSW', 'New South Wales', 'Australia/Sydney', '-33.8688', '151.2093', 'OC', 'Oceania'],
] as const;
const REFERRERS = ['$direct', '$direct', 'https://www.google.com/', 'https://news.ycombinator.com/', 'https://twitter.com/', 'https://www.linkedin.com/', 'https://duckduckgo.com/'];
const LIBS = [
  ['web', '1.139.2'],
  ['web', '1.141.0'],
  ['posthog-python', '3.5.0'],
  ['posthog-node', '4.0.1'],
  ['posthog-ios', '3.6.1'],
  ['posthog-android', '3.4.0'],
] as const;
const WORDS = [
  'alpha',
  'beacon',
  'cohort',
  'delta',
  'ember',
  'funnel',
  'gauge',
  'harbor',
  'insight',
  'jigsaw',
  'kernel',
  'lumen',
  'matrix',
  'nimbus',
  'orbit',
  'pixel',
  'quartz',
  'retention',
  'signal',
  'tensor',
  'umbra',
  'vector',
  'willow',
  'xenon',
  'yonder',
  'zephyr',
  'onboarding',
  'checkout',
  'variant',
  'experiment',
  'dashboard',
  'trend',
  'paths',
  'lifecycle',
  'stickiness',
];
const CUSTOM_KEYS = [
  'plan',
  'utm_source',
  'utm_medium',
  'utm_campaign',
  'utm_content',
  'organization_id',
  'project_name',
  'button_label',
  'component',
  'variant',
  'cart_value',
  'currency',
  'item_count',
  'insight_type',
  'dashboard_id',
  'search_term',
  'filter_count',
  'is_first_visit',
  'experiment_id',
  'page_title',
  'referrer_source',
  'layout',
  'theme',
  'locale',
  'app_build',
  'api_version',
  'duration_ms',
  'error_code',
  'role',
  'seat_count',
];
const EVENTS: readonly (readonly [string, number])[] = [
  ['$pageview', 34],
  ['$autocapture', 24],
  ['$pageleave', 8],
  ['$feature_flag_called', 9],
  ['$web_vitals', 4],
  ['$identify', 2],
  ['$groupidentify', 1],
  ['$exception', 2],
  ['$rageclick', 1],
  ['$screen', 3],
  ['insight viewed', 3],
  ['dashboard loaded', 2],
  ['signed_up', 1],
  ['purchase completed', 1],
  ['recording viewed', 2],
  ['user logged in', 3],
];
const EVENT_CDF = cumulative(EVENTS.map(([, w]) => w));
const TAGS = ['button', 'a', 'div', 'span', 'input', 'svg', 'li', 'form'];
const CLASSES = ['btn', 'btn-primary', 'LemonButton', 'nav-link', 'card', 'menu-item', 'cta', 'Link'];
const TEXTS = ['Sign up', 'Get started', 'Pricing', 'Save', 'Continue', 'Add to cart', 'Log in', 'Learn more', 'Créer un compte'];
const GROUP_TYPES = ['organization', 'project', 'instance', 'customer', 'workspace'];
const PLANS = ['free', 'scale', 'enterprise', 'startup', 'teams'];
const LOG_SOURCES = ['CONSOLE', 'CONSOLE', 'CONSOLE', 'PLUGIN', 'SYSTEM'];
const LOG_TYPES = ['INFO', 'INFO', 'LOG', 'LOG', 'DEBUG', 'WARN', 'ERROR'];
const LOG_MESSAGES = [
  'Plugin loaded',
  'Exporting batch of events to destination',
  'Batch exported successfully',
  'Rate limited by upstream API, retrying in 5s',
  'setupPlugin completed in 142ms',
  'Event dropped: missing required property "email"',
  "TypeError: Cannot read properties of undefined (reading 'id')\n    at processEvent (plugin.js:42:17)\n    at runEveryMinute (plugin.js:88:5)",
  'Received 429 Too Many Requests from https://api.example.com/v2/track',
  'Connected to webhook endpoint ✓',
];
const METRIC_CATEGORIES = ['processEvent', 'onEvent', 'exportEvents', 'scheduledTask', 'webhook', 'composeWebhook'];
const ERROR_TYPES = ['TypeError', 'RetryError', 'FetchError', 'TimeoutError', 'SyntaxError'];
const DLQ_LOCATIONS = ['plugin_server_ingest_event', 'plugin_server_single_event', 'process_event', 'capture_validation'];
const DLQ_ERRORS = [
  'Event timestamp is too far in the future',
  'Invalid distinct_id: empty string',
  'Property value is not valid JSON',
  'Team not found',
  'Error: Person merge failed after 3 retries',
];

function cumulative(weights: readonly number[]): Float64Array {
  const out = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) out[i] = sum += weights[i] ?? 0;
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / sum;
  return out;
}

/** Index drawn from a normalised cumulative distribution. */
function sampleCdf(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cdf[mid] ?? 1) > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function at<T>(items: readonly T[], i: number): T {
  const item = items[i];
  if (item === undefined) throw new Error(`index ${i} out of range`);
  return item;
}

// A 1 MiB pool of base64 characters (what gzip-base64 snapshot data looks like), sliced per recording.
let base64Pool: string | undefined;
function getBase64Pool(): string {
  if (base64Pool === undefined) {
    const rng = new Rng(0x5eed);
    const bytes = Buffer.allocUnsafe(786432);
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(rng.u32(), i);
    base64Pool = bytes.toString('base64');
  }
  return base64Pool;
}

// ---------------------------------------------------------------------------------------------
// Shared context: teams, users, persons, groups

const DEFAULT_BASE_TIME = Date.UTC(2030, 0, 1);
const DAY_MS = 86_400_000;

class World {
  readonly rng: Rng;
  readonly teams: number;
  readonly teamCdf: Float64Array;
  readonly baseTime: number;
  readonly stepMs: number;
  readonly plugins: number;
  readonly bigRecordingFraction: number;
  readonly headers: boolean;
  readonly out = new SlabWriter();
  index = 0;

  constructor(topic: string, options: GenerateOptions) {
    this.rng = new Rng(hash3(options.seed >>> 0, hashString(topic), 0x1234));
    this.teams = Math.max(1, Math.floor(options.teams ?? 1000));
    const s = options.zipfExponent ?? 1.2;
    this.teamCdf = cumulative(Array.from({ length: this.teams }, (_, k) => 1 / Math.pow(k + 1, s)));
    this.baseTime = options.baseTime ?? DEFAULT_BASE_TIME;
    this.stepMs = 1000 / (options.ratePerSecond ?? 1000);
    this.plugins = Math.max(1, Math.floor(options.plugins ?? 30));
    this.bigRecordingFraction = options.bigRecordingFraction ?? 0.02;
    this.headers = options.headers ?? false;
  }

  team(): number {
    return sampleCdf(this.teamCdf, this.rng.float()) + 1;
  }

  /** Users of a team: big teams have many. */
  usersOf(team: number): number {
    return Math.max(20, Math.floor(200_000 / team));
  }

  /** Simulated wall time of the current message. */
  now(): number {
    return Math.floor(this.baseTime + this.index * this.stepMs);
  }

  distinctId(team: number, user: number): string {
    // Mostly anonymous device ids, some identified emails / backend ids, as real projects have.
    const kind = hash3(team, user, 7) % 10;
    if (kind < 6) return stableUuid7(this.baseTime - (hash3(team, user, 8) % (90 * DAY_MS)), team, user, 9);
    if (kind < 9) return `user${user}@customer${team}.example.com`;
    return `backend-${team}-${user}`;
  }

  personId(team: number, user: number): string {
    return stableUuid(team, user, 0xbeef);
  }

  personCreatedAt(team: number, user: number): number {
    return this.baseTime - 1000 * (hash3(team, user, 0xc0de) % (400 * 86_400));
  }

  groupKey(team: number, typeIndex: number, n: number): string {
    return typeIndex === 0 ? `org-${team}-${n}` : `${at(GROUP_TYPES, typeIndex)}-${hex8(hash3(team, typeIndex, n))}`;
  }

  groupCreatedAt(team: number, typeIndex: number, n: number): number {
    return this.baseTime - 1000 * (hash3(team, typeIndex, n ^ 0x51) % (700 * 86_400));
  }

  headersFor(team: number): Record<string, Buffer> | undefined {
    if (!this.headers) return undefined;
    return { source: Buffer.from('posthog-generator'), team_id: Buffer.from(String(team)) };
  }

  message(topic: PosthogTopic, key: string | null, value: string, teamId: number, id: string): GeneratedMessage {
    const headers = this.headersFor(teamId);
    const msg: GeneratedMessage = {
      topic,
      key: key === null ? null : this.out.bytes(key),
      value: this.out.bytes(value),
      teamId,
      id,
    };
    if (headers) msg.headers = headers;
    return msg;
  }
}

// ---------------------------------------------------------------------------------------------
// Events

const Q = '\\"'; // a double quote inside a JSON string inside JSON

function ps(key: string, value: string): string {
  return `${Q}${key}${Q}:${Q}${value}${Q}`;
}

function pn(key: string, value: number | boolean): string {
  return `${Q}${key}${Q}:${value}`;
}

/** Target message size: ~15% short events 550–1100 B, the rest bell-shaped around 1.5 KB, all ≤ 2000 B. */
function targetEventSize(rng: Rng): number {
  if (rng.chance(0.15)) return rng.range(550, 1100);
  const bell = (rng.float() + rng.float() + rng.float()) / 3; // mean 0.5, sd ~0.17
  return Math.min(2000, Math.round(1140 + bell * 800));
}

function elementsChain(rng: Rng): string {
  // PostHog's elements_chain: `tag.class1.class2:attr="v"nth-child="1"...;parent...`; contains quotes.
  const depth = rng.range(1, 4);
  const parts: string[] = [];
  for (let i = 0; i < depth; i++) {
    const tag = rng.pick(TAGS);
    const cls = rng.chance(0.7) ? `.${rng.pick(CLASSES)}` : '';
    const text = i === 0 && rng.chance(0.8) ? `text=\\"${rng.pick(TEXTS)}\\"` : '';
    const href = tag === 'a' ? `attr__href=\\"${rng.pick(PATHS)}\\"href=\\"${rng.pick(PATHS)}\\"` : '';
    parts.push(`${tag}${cls}:${href}attr__class=\\"${cls.slice(1)}\\"nth-child=\\"${rng.range(1, 9)}\\"nth-of-type=\\"${rng.range(1, 4)}\\"${text}`);
  }
  return parts.join(';');
}

function eventName(rng: Rng): string {
  return at(EVENTS, sampleCdf(EVENT_CDF, rng.float()))[0];
}

const SERVER_EVENTS = ['user logged in', 'signed_up', 'purchase completed', 'subscription renewed', 'api key created', 'export finished', 'invite sent'];
const SERVER_LIBS = [
  ['posthog-python', '3.5.0'],
  ['posthog-node', '4.0.1'],
  ['posthog-go', '1.2.18'],
  ['posthog-ruby', '2.5.0'],
] as const;

function* events(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const topic = TOPICS.events;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const user = rng.int(w.usersOf(team));
    const target = targetEventSize(rng);
    // Small events look like server-side captures: few properties, no elements, no groups.
    const server = target < 1150;
    const ts = now - rng.int(5000); // client clocks and batching: a little out of order
    const createdAt = now + rng.int(1500);
    const uuid = uuid7(ts, rng);
    const event = server ? rng.pick(SERVER_EVENTS) : eventName(rng);
    const distinctId = w.distinctId(team, user);
    const personId = w.personId(team, user);
    const sessionStart = ts - (ts % 1_800_000);
    const sessionId = stableUuid7(sessionStart, team, user, sessionStart / 1_800_000);
    const host = at(HOSTS, hash3(team, 0, 1) % HOSTS.length);
    const path = rng.pick(PATHS);
    const url = `https://${host}${path}${rng.pick(QUERIES)}`;
    const [browser, browserVersion] = at(BROWSERS, hash3(team, user, 2) % BROWSERS.length);
    const [os, osVersion] = at(OSES, hash3(team, user, 3) % OSES.length);
    const geo = at(GEO, hash3(team, user, 4) % GEO.length);
    const [lib, libVersion] = server ? at(SERVER_LIBS, hash3(team, 0, 5) % SERVER_LIBS.length) : at(LIBS, hash3(team, 0, 5) % LIBS.length);
    const groupCount = server ? 0 : hash3(team, 0, 6) % 3; // 0–2 group types per team
    const personMode = rng.chance(0.92) ? 'full' : rng.chance(0.8) ? 'propertyless' : 'force_upgrade';
    const elements = event === '$autocapture' || event === '$rageclick' ? elementsChain(rng) : '';
    const email = `user${user}@customer${team}.example.com`;

    // Outer fields (everything but properties).
    const personProperties = server
      ? `{${ps('email', email)}}`
      : `{${ps('email', email)},${ps('name', `${rng.pick(WORDS)} ${rng.pick(WORDS)}`)},${ps('$initial_browser', browser)},${ps('$initial_os', os)},${ps('$geoip_country_code', geo[0])}}`;
    let groupFields = '';
    const groupProps: string[] = [];
    for (let g = 0; g < groupCount; g++) {
      const n = user % (g === 0 ? 50 : 200);
      const key = w.groupKey(team, g, n);
      groupProps.push(ps(at(GROUP_TYPES, g), key));
      groupFields += `,"group${g}_properties":"{${ps('name', key)},${ps('plan', at(PLANS, n % PLANS.length))},${pn('seats', 1 + (n % 40))}}","group${g}_created_at":"${ts3(w.groupCreatedAt(team, g, n))}"`;
    }
    const head = `{"uuid":"${uuid}","event":"${event}","properties":"{`;
    const tail =
      `}","timestamp":"${ts6(ts, rng.int(1000))}","team_id":${team},"distinct_id":"${distinctId}","elements_chain":"${elements}",` +
      `"created_at":"${ts6(createdAt, rng.int(1000))}","person_id":"${personId}","person_properties":"${personProperties}",` +
      `"person_created_at":"${ts0(w.personCreatedAt(team, user))}"${groupFields},"person_mode":"${personMode}",` +
      `"project_id":${team},"captured_at":"${ts6(ts + rng.int(800), rng.int(1000))}"}`;

    // Properties: the core always, then optional ones in priority order while they fit the target.
    let body =
      `${ps('$lib', lib)},${ps('$lib_version', libVersion)},${ps('$insert_id', hex8(rng.u32()) + hex8(rng.u32()))},` +
      `${pn('$time', Math.floor(ts / 1000) + (ts % 1000) / 1000)},${ps('distinct_id', distinctId)},` +
      `${ps('$session_id', sessionId)},${ps('token', `phc_${hex8(hash3(team, 0, 14))}${hex8(hash3(team, 0, 15))}`)}`;
    if (groupCount > 0) {
      for (let g = 0; g < groupCount; g++) body += `,${ps(`$group_${g}`, w.groupKey(team, g, user % (g === 0 ? 50 : 200)))}`;
      body += `,${Q}$groups${Q}:{${groupProps.join(',')}}`;
    }
    let size = head.length + tail.length + body.length;
    const optional: string[] = [];
    if (event === '$feature_flag_called') {
      optional.push(ps('$feature_flag', `${rng.pick(WORDS)}-${rng.pick(WORDS)}`), ps('$feature_flag_response', rng.chance(0.5) ? 'test' : 'control'));
    }
    if (!server) {
      optional.push(
        ps('$window_id', stableUuid7(sessionStart + 1, team, user, 0x77)),
        ps('$current_url', url),
        ps('$host', host),
        ps('$pathname', path),
        ps('$os', os),
        ps('$os_version', osVersion),
        ps('$browser', browser),
        pn('$browser_version', Number.parseFloat(browserVersion)),
        ps('$device_type', at(DEVICE_TYPES, hash3(team, user, 10) % DEVICE_TYPES.length)),
        ps('$referrer', rng.pick(REFERRERS)),
        ps('$device_id', stableUuid7(ts - 86_400_000, team, user, 13)),
        pn('$screen_height', 900 + (hash3(team, user, 11) % 540)),
        pn('$screen_width', 1440 + (hash3(team, user, 12) % 1120)),
      );
    }
    optional.push(ps('$geoip_country_code', geo[0]), ps('$geoip_country_name', geo[1]), ps('$geoip_city_name', geo[2]), ps('$geoip_time_zone', geo[5]), ps('$geoip_continent_code', geo[8]));
    if (event === '$identify' || (!server && rng.chance(0.1))) {
      optional.push(`${Q}$set${Q}:{${ps('email', email)},${ps('plan', rng.pick(PLANS))}}`);
      optional.push(`${Q}$set_once${Q}:{${ps('$initial_referrer', rng.pick(REFERRERS))},${ps('$initial_current_url', url)}}`);
    }
    optional.push(ps('$geoip_subdivision_1_code', geo[3]), ps('$geoip_subdivision_1_name', geo[4]), pn('$geoip_latitude', Number(geo[6])), pn('$geoip_longitude', Number(geo[7])));
    for (const extra of optional) {
      if (size + extra.length + 1 > target) continue;
      body += `,${extra}`;
      size += extra.length + 1;
    }
    // Pad with custom properties (distinct keys) until the message is within 40 bytes of its target.
    let k = rng.int(CUSTOM_KEYS.length);
    for (let n = 0; target - size >= 40; n++, k++) {
      const key = n < CUSTOM_KEYS.length ? at(CUSTOM_KEYS, k % CUSTOM_KEYS.length) : `${rng.pick(WORDS)}_${n}`;
      const kind = rng.int(4);
      const extra =
        kind === 0
          ? pn(key, rng.int(100000))
          : kind === 1
            ? pn(key, rng.chance(0.5))
            : ps(key, rng.chance(0.5) ? `${rng.pick(WORDS)} ${rng.pick(WORDS)} ${rng.pick(WORDS)}` : `${rng.pick(WORDS)}-${hex8(rng.u32())}`);
      body += `,${extra}`;
      size += extra.length + 1;
    }
    yield w.message(topic, uuid, head + body + tail, team, uuid);
  }
}

// ---------------------------------------------------------------------------------------------
// Session recordings

const MAX_MESSAGE_BYTES = 1_000_000;

function* sessionRecordingEvents(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const pool = getBase64Pool();
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const user = rng.int(w.usersOf(team));
    const ts = now - rng.int(3000);
    const uuid = uuid4(rng);
    const sessionStart = ts - (ts % 1_800_000);
    const sessionId = stableUuid7(sessionStart, team, user, sessionStart / 1_800_000);
    const windowId = stableUuid7(sessionStart + 1, team, user, 0x77);
    const big = rng.chance(w.bigRecordingFraction);
    // Small snapshots: log-uniform 200 B – 40 KB of base64; big ones: total 900–990 KB.
    let dataLen = big ? 0 : Math.floor(200 * Math.pow(200, rng.float()));
    const chunkCount = big ? rng.range(2, 4) : 1;
    const chunkIndex = big ? rng.int(chunkCount) : 0;
    const fullSnapshot = chunkIndex === 0 && rng.chance(0.3);
    const prefix = JSON.stringify({
      uuid,
      team_id: team,
      distinct_id: w.distinctId(team, user),
      session_id: sessionId,
      window_id: windowId,
    });
    const snapshotHead = `{"chunk_id":"${uuid4(rng)}","chunk_index":${chunkIndex},"chunk_count":${chunkCount},"data":"H4sI`;
    const snapshotTail = `","compression":"gzip-base64","has_full_snapshot":${fullSnapshot},"events_summary":[{"timestamp":${ts},"type":${fullSnapshot ? 2 : 3},"data":{"source":${rng.int(6)}}}]}`;
    const suffix = `,"timestamp":"${ts6(ts, rng.int(1000))}","created_at":"${ts6(now + rng.int(1000), rng.int(1000))}"}`;
    const overhead = prefix.length + suffix.length + JSON.stringify(snapshotHead + snapshotTail).length + 20;
    if (big) dataLen = rng.range(900_000, 990_000) - overhead;
    dataLen = Math.min(dataLen, MAX_MESSAGE_BYTES - overhead - 1000, pool.length);
    const start = rng.int(pool.length - dataLen + 1);
    const snapshot = snapshotHead + pool.slice(start, start + dataLen) + snapshotTail;
    const value = `${prefix.slice(0, -1)},"snapshot_data":${JSON.stringify(snapshot)}${suffix}`;
    yield w.message(TOPICS.sessionRecordingEvents, null, value, team, uuid);
  }
}

// ---------------------------------------------------------------------------------------------
// plugin_log_entries

function* pluginLogEntries(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const id = uuid4(rng);
    const pluginId = 1 + rng.int(w.plugins);
    const value = JSON.stringify({
      source: rng.pick(LOG_SOURCES),
      type: rng.pick(LOG_TYPES),
      id,
      team_id: team,
      plugin_id: pluginId,
      plugin_config_id: pluginId * 1000 + (team % 997),
      timestamp: ts6(now, rng.int(1000)),
      message: rng.pick(LOG_MESSAGES),
      instance_id: stableUuid(pluginId, 0, 0x1f),
    });
    yield w.message(TOPICS.pluginLogEntries, id, value, team, id);
  }
}

// ---------------------------------------------------------------------------------------------
// person, person_distinct_id, groups: versioned entities; updates reuse recently seen ids.

interface Recent {
  team: number;
  a: number;
  b: number;
  version: number;
}

/** Versioned entities seen so far; `pick` updates a recent one or creates one (a repeat becomes an update). */
class Entities {
  readonly all = new Map<string, Recent>();
  readonly recent: Recent[] = [];
  pick(w: World, reuse: number, fresh: (team: number) => Recent): Recent {
    const rng = w.rng;
    if (this.recent.length > 0 && rng.chance(reuse)) {
      const entity = at(this.recent, rng.int(this.recent.length));
      entity.version++;
      return entity;
    }
    const made = fresh(w.team());
    const id = `${made.team}/${made.a}/${made.b}`;
    const known = this.all.get(id);
    if (known !== undefined) {
      known.version++;
      return known;
    }
    this.all.set(id, made);
    if (this.recent.length < 5000) this.recent.push(made);
    else this.recent[rng.int(this.recent.length)] = made;
    return made;
  }
}

function* person(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    const p = entities.pick(w, 0.35, (team) => ({ team, a: rng.int(w.usersOf(team)), b: 0, version: 0 }));
    const id = w.personId(p.team, p.a);
    const properties: Record<string, string | number | boolean> = {
      email: `user${p.a}@customer${p.team}.example.com`,
      name: `${rng.pick(WORDS)} ${rng.pick(WORDS)}`,
      plan: rng.pick(PLANS),
      $initial_browser: at(BROWSERS, hash3(p.team, p.a, 2) % BROWSERS.length)[0],
      $initial_os: at(OSES, hash3(p.team, p.a, 3) % OSES.length)[0],
      $geoip_city_name: at(GEO, hash3(p.team, p.a, 4) % GEO.length)[2],
      login_count: p.version + 1,
    };
    const value = JSON.stringify({
      id,
      created_at: ts0(w.personCreatedAt(p.team, p.a)),
      properties: JSON.stringify(properties),
      team_id: p.team,
      is_identified: rng.chance(0.6) ? 1 : 0,
      is_deleted: rng.chance(0.01) ? 1 : 0,
      version: p.version,
    });
    yield w.message(TOPICS.person, null, value, p.team, `${id}@${p.version}`);
  }
}

function* personDistinctId(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    // An update re-points a distinct id to another person (a merge) with a higher version.
    const p = entities.pick(w, 0.2, (team) => {
      const user = rng.int(w.usersOf(team));
      return { team, a: user, b: user, version: 0 };
    });
    if (p.version > 0) p.b = rng.int(w.usersOf(p.team));
    const distinctId = w.distinctId(p.team, p.a);
    const value = JSON.stringify({
      person_id: w.personId(p.team, p.b),
      team_id: p.team,
      distinct_id: distinctId,
      version: p.version,
      is_deleted: rng.chance(0.01) ? 1 : 0,
    });
    yield w.message(TOPICS.personDistinctId, null, value, p.team, `${p.team}/${distinctId}@${p.version}`);
  }
}

function* groups(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  const entities = new Entities();
  for (let i = 0; i < count; i++, w.index++) {
    const g = entities.pick(w, 0.4, (team) => {
      const typeIndex = rng.chance(0.7) ? 0 : rng.range(1, 4);
      return { team, a: typeIndex, b: rng.int(typeIndex === 0 ? 50 : 200), version: 0 };
    });
    const key = w.groupKey(g.team, g.a, g.b);
    const properties = {
      name: key,
      plan: at(PLANS, (g.b + g.version) % PLANS.length),
      seats: 1 + ((g.b * 7 + g.version) % 400),
      industry: rng.pick(WORDS),
      created_via: rng.chance(0.5) ? 'posthog-js' : 'api',
    };
    const value = JSON.stringify({
      group_type_index: g.a,
      group_key: key,
      team_id: g.team,
      group_properties: JSON.stringify(properties),
      created_at: ts0(w.groupCreatedAt(g.team, g.a, g.b)),
      version: g.version,
    });
    yield w.message(TOPICS.groups, null, value, g.team, `${g.team}/${g.a}/${key}@${g.version}`);
  }
}

// ---------------------------------------------------------------------------------------------
// app_metrics and the events dead letter queue

function* appMetrics(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const pluginConfigId = (1 + rng.int(w.plugins)) * 1000 + (team % 997);
    const failures = rng.chance(0.15) ? rng.range(1, 50) : 0;
    const timestamp = ts6(now, rng.int(1000));
    const category = rng.pick(METRIC_CATEGORIES);
    const row: Record<string, string | number | null> = {
      timestamp,
      team_id: team,
      plugin_config_id: pluginConfigId,
      job_id: null,
      category,
      successes: rng.int(5000),
      successes_on_retry: rng.chance(0.1) ? rng.range(1, 20) : 0,
      failures,
    };
    // PostHog omits the error fields when there was no error (JSON.stringify drops undefined).
    if (failures > 0) {
      const errorType = rng.pick(ERROR_TYPES);
      row.error_uuid = uuid4(rng);
      row.error_type = errorType;
      row.error_details = JSON.stringify({
        error: { name: errorType, message: rng.pick(DLQ_ERRORS), stack: `${errorType}: failed\n    at plugin.js:${rng.range(1, 400)}:${rng.range(1, 80)}` },
        eventCount: rng.range(1, 500),
      });
    }
    yield w.message(TOPICS.appMetrics, null, JSON.stringify(row), team, `${team}/${pluginConfigId}/${category}/${timestamp}/${i}`);
  }
}

function* deadLetterQueue(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const user = rng.int(w.usersOf(team));
    const id = uuid4(rng);
    const eventUuid = uuid7(now - rng.int(60_000), rng);
    const event = eventName(rng);
    const distinctId = w.distinctId(team, user);
    const properties = JSON.stringify({
      $current_url: `https://${at(HOSTS, team % HOSTS.length)}${rng.pick(PATHS)}`,
      $lib: 'web',
      $session_id: stableUuid(team, user, 0x5e),
      [rng.pick(CUSTOM_KEYS)]: rng.pick(WORDS),
    });
    const createdAt = ts6(now - rng.int(10_000), rng.int(1000));
    const rawPayload = JSON.stringify({ event, distinct_id: distinctId, properties: JSON.parse(properties) as unknown, uuid: eventUuid, team_id: team, now: createdAt });
    const value = JSON.stringify({
      id,
      event_uuid: eventUuid,
      event,
      properties,
      distinct_id: distinctId,
      team_id: team,
      elements_chain: '',
      created_at: createdAt,
      ip: rng.chance(0.5) ? '' : `203.0.113.${rng.range(1, 254)}`,
      site_url: rng.chance(0.5) ? '' : `https://${at(HOSTS, team % HOSTS.length)}`,
      now: ts6(now, rng.int(1000)),
      raw_payload: rawPayload,
      error_timestamp: ts6(now + rng.int(2000), rng.int(1000)),
      error_location: rng.pick(DLQ_LOCATIONS),
      error: rng.pick(DLQ_ERRORS),
      tags: rng.chance(0.8) ? ['plugin_server', 'ingest_event'] : ['plugin_server'],
    });
    yield w.message(TOPICS.deadLetterQueue, null, value, team, id);
  }
}

// ---------------------------------------------------------------------------------------------
// Public API

const BUILDERS: Record<PosthogTopic, (w: World, count: number) => Generator<GeneratedMessage>> = {
  clickhouse_events_json: events,
  clickhouse_session_recording_events: sessionRecordingEvents,
  plugin_log_entries: pluginLogEntries,
  clickhouse_person: person,
  clickhouse_person_distinct_id: personDistinctId,
  clickhouse_groups: groups,
  clickhouse_app_metrics: appMetrics,
  events_dead_letter_queue: deadLetterQueue,
};

/**
 * `count` messages for `topic`. Values and keys are views into shared 4 MiB slabs (cheap to make,
 * keep the slab alive while referenced); copy them if you keep a few out of millions.
 */
export function* generate(topic: string, options: GenerateOptions): Generator<GeneratedMessage> {
  if (!isPosthogTopic(topic)) throw new Error(`unknown PostHog topic: ${topic}`);
  yield* BUILDERS[topic](new World(topic, options), options.count);
}

/** Fast path: just the values (e.g. 2 million events for a benchmark). */
export function* generateValues(topic: string, options: GenerateOptions): Generator<Buffer> {
  for (const message of generate(topic, options)) yield message.value;
}

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

// ---------------------------------------------------------------------------------------------
// Corrupt messages for tests (each a GeneratedMessage on the given topic)

function firstMessage(topic: string, seed: number): GeneratedMessage {
  const first = generate(topic, { seed, count: 1, bigRecordingFraction: 0 }).next();
  if (first.done) throw new Error('generator produced nothing');
  return first.value;
}

function withValue(message: GeneratedMessage, value: string | Buffer, teamId = message.teamId): GeneratedMessage {
  return { ...message, value: Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), teamId, id: `${message.id}!corrupt` };
}

function parseObject(message: GeneratedMessage): Record<string, unknown> {
  return JSON.parse(message.value.toString('utf8')) as Record<string, unknown>;
}

const BAD_VALUE_FIELD: Record<PosthogTopic, [string, unknown]> = {
  clickhouse_events_json: ['uuid', 'not-a-uuid'],
  clickhouse_session_recording_events: ['timestamp', 'garbage'],
  plugin_log_entries: ['timestamp', 'garbage'],
  clickhouse_person: ['id', 'not-a-uuid'],
  clickhouse_person_distinct_id: ['person_id', 'not-a-uuid'],
  clickhouse_groups: ['group_type_index', 'zero'],
  clickhouse_app_metrics: ['timestamp', 'garbage'],
  events_dead_letter_queue: ['event_uuid', 'not-a-uuid'],
};

export const corrupt = {
  /** Not JSON at all. */
  notJson(topic: string, seed = 1): GeneratedMessage {
    return withValue(firstMessage(topic, seed), 'this is {not json');
  },
  /** Valid JSON, truncated mid-object. */
  truncated(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    return withValue(m, m.value.subarray(0, Math.floor(m.value.length / 2)));
  },
  /** An empty value (what a tombstone or a broken producer sends). */
  emptyValue(topic: string, seed = 1): GeneratedMessage {
    return withValue(firstMessage(topic, seed), '');
  },
  /** A JSON array (containing the real row) instead of an object. */
  jsonArray(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    return withValue(m, `[${m.value.toString('utf8')}]`);
  },
  /** A well-formed object with a value its column can't take (e.g. events `"uuid":"not-a-uuid"`). */
  badColumnValue(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const [field, bad] = BAD_VALUE_FIELD[m.topic];
    return withValue(m, JSON.stringify({ ...parseObject(m), [field]: bad }));
  },
  /**
   * A well-formed object whose `timestamp` (or created_at) is garbage. person_distinct_id has no
   * time field: there it is badColumnValue.
   */
  badTimestamp(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const row = parseObject(m);
    const field = 'timestamp' in row ? 'timestamp' : 'created_at' in row ? 'created_at' : undefined;
    if (field === undefined) return corrupt.badColumnValue(topic, seed);
    return withValue(m, JSON.stringify({ ...row, [field]: 'garbage' }));
  },
  /** A well-formed object without team_id. */
  missingTeamId(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const { team_id: _teamId, ...rest } = parseObject(m);
    return withValue(m, JSON.stringify(rest), 0);
  },
};
