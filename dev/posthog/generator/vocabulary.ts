// Owns the vocabulary the messages are made of: hosts, paths, browsers, places, words, event names
// and their weights, log lines and errors. All values are JSON-safe (no quotes, backslashes or control
// characters) because events are assembled as strings without escaping.
import type { Rng } from './random.ts';
import { at, cumulative, sampleCdf } from './random.ts';

export const HOSTS = ['app.acme.io', 'www.shopfront.com', 'dashboard.metrics.dev', 'docs.widgets.co', 'beta.travelly.app', 'portal.finhub.eu', 'learn.cursus.org', 'store.kiosko.mx'];
export const PATHS = [
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
export const QUERIES = ['', '', '', '?utm_source=google&utm_medium=cpc', '?ref=producthunt', '?q=retention+cohorts', '?page=2', '?plan=scale&period=annual'];
export const BROWSERS = [
  ['Chrome', '126'],
  ['Chrome', '125'],
  ['Safari', '17.5'],
  ['Firefox', '127'],
  ['Microsoft Edge', '126'],
  ['Mobile Safari', '17.4'],
  ['Chrome iOS', '126'],
  ['Samsung Internet', '25'],
] as const;
export const OSES = [
  ['Mac OS X', '14.5.0'],
  ['Windows', '10.0'],
  ['Linux', ''],
  ['iOS', '17.5.1'],
  ['Android', '14'],
  ['Chrome OS', '15886.44.0'],
] as const;
export const DEVICE_TYPES = ['Desktop', 'Desktop', 'Desktop', 'Mobile', 'Mobile', 'Tablet'];
export const GEO = [
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
export const REFERRERS = ['$direct', '$direct', 'https://www.google.com/', 'https://news.ycombinator.com/', 'https://twitter.com/', 'https://www.linkedin.com/', 'https://duckduckgo.com/'];
export const LIBS = [
  ['web', '1.139.2'],
  ['web', '1.141.0'],
  ['posthog-python', '3.5.0'],
  ['posthog-node', '4.0.1'],
  ['posthog-ios', '3.6.1'],
  ['posthog-android', '3.4.0'],
] as const;
export const WORDS = [
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
export const CUSTOM_KEYS = [
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
export const TAGS = ['button', 'a', 'div', 'span', 'input', 'svg', 'li', 'form'];
export const CLASSES = ['btn', 'btn-primary', 'LemonButton', 'nav-link', 'card', 'menu-item', 'cta', 'Link'];
export const TEXTS = ['Sign up', 'Get started', 'Pricing', 'Save', 'Continue', 'Add to cart', 'Log in', 'Learn more', 'Créer un compte'];
export const GROUP_TYPES = ['organization', 'project', 'instance', 'customer', 'workspace'];
export const PLANS = ['free', 'scale', 'enterprise', 'startup', 'teams'];
export const LOG_SOURCES = ['CONSOLE', 'CONSOLE', 'CONSOLE', 'PLUGIN', 'SYSTEM'];
export const LOG_TYPES = ['INFO', 'INFO', 'LOG', 'LOG', 'DEBUG', 'WARN', 'ERROR'];
export const LOG_MESSAGES = [
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
export const METRIC_CATEGORIES = ['processEvent', 'onEvent', 'exportEvents', 'scheduledTask', 'webhook', 'composeWebhook'];
export const ERROR_TYPES = ['TypeError', 'RetryError', 'FetchError', 'TimeoutError', 'SyntaxError'];
export const DLQ_LOCATIONS = ['plugin_server_ingest_event', 'plugin_server_single_event', 'process_event', 'capture_validation'];
export const DLQ_ERRORS = [
  'Event timestamp is too far in the future',
  'Invalid distinct_id: empty string',
  'Property value is not valid JSON',
  'Team not found',
  'Error: Person merge failed after 3 retries',
];

/** An event name drawn by the weights in EVENTS. */
export function eventName(rng: Rng): string {
  return at(EVENTS, sampleCdf(EVENT_CDF, rng.float()))[0];
}

// What server-side libraries capture: the small events, with few properties.
export const SERVER_EVENTS = ['user logged in', 'signed_up', 'purchase completed', 'subscription renewed', 'api key created', 'export finished', 'invite sent'];
export const SERVER_LIBS = [
  ['posthog-python', '3.5.0'],
  ['posthog-node', '4.0.1'],
  ['posthog-go', '1.2.18'],
  ['posthog-ruby', '2.5.0'],
] as const;
