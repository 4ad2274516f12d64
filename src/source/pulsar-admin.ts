// Owns the few calls the Pulsar adapter makes to the broker's REST admin API (/admin/v2) with
// fetch: a topic's partition count, creating a ledger topic and its retention, who is subscribed,
// the newest messages of a topic (examinemessage), its ledgers (internal stats). Every call has a
// deadline and honours the caller's signal; the token travels in a header and is never logged, also
// on a redirect to the broker that owns the topic (followed here: fetch would drop the header).
import { printableUrl } from '../config/schema.ts';
import type { Secret } from '../config/secret.ts';
import { ConfigError } from '../errors/inserter-error.ts';
import { parseEntryId } from './pulsar-message-id.ts';

const REQUEST_TIMEOUT_MS = 15_000;

/** An admin call that failed: the broker answered with an error status, or did not answer. */
export class PulsarRequestError extends Error {
  readonly code = 'PULSAR_REQUEST_FAILED';
  /** HTTP status; 0 when there was no answer. */
  readonly status: number;
  constructor(what: string, status: number, detail: string, cause?: unknown) {
    super(`pulsar admin ${what}: ${status === 0 ? 'no answer' : `HTTP ${status}`}${detail === '' ? '' : `: ${detail}`}`, cause === undefined ? undefined : { cause });
    this.name = 'PulsarRequestError';
    this.status = status;
  }
}

export interface PulsarAdminOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8080 (admin API and WebSocket API). */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  readonly token?: Secret;
}

/** A message read through the admin API. */
export interface ExaminedMessage {
  readonly id: { ledgerId: bigint; entryId: bigint };
  readonly payload: Buffer;
  readonly properties: Readonly<Record<string, string>>;
  readonly producerName: string | undefined;
}

export interface RetentionPolicy {
  readonly retentionTimeInMinutes: number;
  readonly retentionSizeInMB: number;
}

/**
 * What is wrong with a broker URL, undefined if nothing: it must be http(s)://host:port, without
 * user info (a token has its own field), and is printed without it (errors must not repeat a password).
 */
export function pulsarUrlIssue(url: string): string | undefined {
  if (hasUserInfo(url)) return `pulsar url must not carry credentials (user:password@): give a token instead, got ${JSON.stringify(printableUrl(url))}`;
  if (!/^https?:\/\/[^/\s@]+\/?$/.test(url)) return `pulsar url must be http(s)://host:port, got ${JSON.stringify(printableUrl(url))}`;
  return undefined;
}

function hasUserInfo(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const parsed = new URL(url);
  return parsed.username !== '' || parsed.password !== '';
}

export class PulsarAdmin {
  readonly #options: PulsarAdminOptions;

  constructor(options: PulsarAdminOptions) {
    // Belt and braces (its users validate the URL first): fetch repeats a URL with user info in its errors.
    if (hasUserInfo(options.url)) throw new ConfigError([pulsarUrlIssue(options.url) ?? 'pulsar url must not carry credentials']);
    this.#options = options;
  }

  /** Headers for the WebSocket API too (its upgrade request authenticates the same way). */
  authHeaders(): Record<string, string> {
    const token = this.#options.token;
    return token === undefined ? {} : { authorization: `Bearer ${token.reveal()}` };
  }

  /** `persistent/<tenant>/<namespace>/<topic>`: the path the admin and WebSocket APIs name a topic by. */
  topicPath(topic: string): string {
    return `persistent/${encodeURIComponent(this.#options.tenant)}/${encodeURIComponent(this.#options.namespace)}/${encodeURIComponent(topic)}`;
  }

  /** Partitions of a partitioned topic; 0 for a non-partitioned topic or one that does not exist. */
  async partitions(topic: string, signal: AbortSignal): Promise<number> {
    const response = await this.#request('GET', `${this.topicPath(topic)}/partitions`, undefined, signal, [404]);
    if (response.status === 404) return 0;
    const body = (await response.json()) as { partitions?: unknown };
    return typeof body.partitions === 'number' ? body.partitions : 0;
  }

  async createPartitionedTopic(topic: string, partitions: number, signal: AbortSignal): Promise<void> {
    await this.#request('PUT', `${this.topicPath(topic)}/partitions`, partitions, signal, [409]);
  }

  /** Creates a non-partitioned topic; one that exists already is left alone. */
  async createTopic(topic: string, signal: AbortSignal): Promise<void> {
    await this.#request('PUT', this.topicPath(topic), undefined, signal, [409]);
  }

  /** The topic's own retention policy (undefined: none set on the topic). */
  async retention(topic: string, signal: AbortSignal): Promise<RetentionPolicy | undefined> {
    const response = await this.#request('GET', `${this.topicPath(topic)}/retention`, undefined, signal, [404]);
    if (response.status === 404) return undefined;
    const text = await response.text();
    const body = (text === '' ? {} : JSON.parse(text)) as Partial<RetentionPolicy> | null;
    if (body === null || typeof body.retentionTimeInMinutes !== 'number' || typeof body.retentionSizeInMB !== 'number') return undefined;
    return { retentionTimeInMinutes: body.retentionTimeInMinutes, retentionSizeInMB: body.retentionSizeInMB };
  }

  async setRetention(topic: string, policy: RetentionPolicy, signal: AbortSignal): Promise<void> {
    await this.#request('POST', `${this.topicPath(topic)}/retention`, policy, signal);
  }

  /** The topic's stats (partition topics only: a partitioned topic's are per partition). */
  async stats(topic: string, signal: AbortSignal): Promise<TopicStats> {
    const response = await this.#request('GET', `${this.topicPath(topic)}/stats`, undefined, signal);
    return (await response.json()) as TopicStats;
  }

  /**
   * The `position`-th newest message of a non-partitioned topic (1: the newest); undefined when
   * the topic has fewer messages (or none, or does not exist).
   */
  async examine(topic: string, position: number, signal: AbortSignal): Promise<ExaminedMessage | undefined> {
    const path = `${this.topicPath(topic)}/examinemessage?initialPosition=latest&messagePosition=${position}`;
    const response = await this.#request('GET', path, undefined, signal, [404, 412]);
    if (response.status === 404 || response.status === 412) {
      await response.body?.cancel();
      return undefined;
    }
    const idText = response.headers.get('x-pulsar-message-id');
    if (idText === null) throw new PulsarRequestError(`examinemessage of ${topic}`, response.status, 'no X-Pulsar-Message-ID header');
    const propertyText = response.headers.get('x-pulsar-property');
    const properties = propertyText === null ? {} : (JSON.parse(propertyText) as Record<string, string>);
    return {
      id: parseEntryId(idText),
      payload: Buffer.from(await response.arrayBuffer()),
      properties,
      producerName: response.headers.get('x-pulsar-producer-name') ?? undefined,
    };
  }

  /** The topic's ledgers, oldest first, with their entry counts (the open ledger's count may lag). */
  async ledgers(topic: string, signal: AbortSignal): Promise<Array<{ ledgerId: bigint; entries: number }>> {
    const response = await this.#request('GET', `${this.topicPath(topic)}/internalStats`, undefined, signal);
    const text = await response.text();
    // Ledger ids are 64-bit: keep their digits exact.
    const body = JSON.parse(text.replace(/"ledgerId"\s*:\s*(\d+)/g, '"ledgerId":"$1"')) as { ledgers?: Array<{ ledgerId: string; entries: number }> };
    return (body.ledgers ?? []).map((l) => ({ ledgerId: BigInt(l.ledgerId), entries: l.entries }));
  }

  /** The entries the topic holds (internal stats' numberOfEntries: the ledger list alone counts 0 for the open ledger). */
  async storedEntries(topic: string, signal: AbortSignal): Promise<number> {
    const response = await this.#request('GET', `${this.topicPath(topic)}/internalStats`, undefined, signal);
    const entries = ((await response.json()) as { numberOfEntries?: unknown }).numberOfEntries;
    return typeof entries === 'number' ? Math.max(0, entries) : 0;
  }

  /** The id of the topic's last message; entry -1: none (empty, or every ledger deleted by retention). */
  async lastMessageId(topic: string, signal: AbortSignal): Promise<{ ledgerId: bigint; entryId: bigint }> {
    const what = `GET lastMessageId of ${topic}`;
    const response = await this.#request('GET', `${this.topicPath(topic)}/lastMessageId`, undefined, signal);
    // Ledger ids are 64-bit: keep their digits exact.
    const body = JSON.parse((await response.text()).replace(/"(ledgerId|entryId)"\s*:\s*(-?\d+)/g, '"$1":"$2"')) as { ledgerId?: string; entryId?: string };
    if (body.ledgerId === undefined || body.entryId === undefined) throw new PulsarRequestError(what, response.status, 'no ledgerId or entryId');
    return { ledgerId: BigInt(body.ledgerId), entryId: BigInt(body.entryId) };
  }

  async #request(method: string, path: string, body: unknown, signal: AbortSignal, accept: readonly number[] = []): Promise<Response> {
    const what = `${method} ${path.split('?')[0]}`;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    let url = new URL(`${this.#options.url.replace(/\/$/, '')}/admin/v2/${path}`);
    let hop = { method, body };
    for (let hops = 0; ; hops++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: hop.method,
          headers: { ...this.authHeaders(), ...(hop.body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(hop.body === undefined ? {} : { body: JSON.stringify(hop.body) }),
          // A broker that does not own the topic redirects to the one that does; fetch would follow
          // but drop the Authorization header on a hop to another origin, so hops are followed here.
          redirect: 'manual',
          signal: deadline,
        });
      } catch (error) {
        signal.throwIfAborted();
        throw new PulsarRequestError(what, 0, (error as Error).message, error);
      }
      if (!REDIRECTS.has(response.status)) {
        if (response.ok || accept.includes(response.status)) return response;
        const detail = (await response.text().catch(() => '')).slice(0, 300);
        throw new PulsarRequestError(what, response.status, detail);
      }
      await response.body?.cancel().catch(() => undefined);
      url = redirectTarget(url, response, what, hops);
      // As fetch does: a 303, or a 301/302 of a POST, is followed with a GET without a body.
      if ((response.status === 303 && hop.method !== 'GET' && hop.method !== 'HEAD') || ((response.status === 301 || response.status === 302) && hop.method === 'POST'))
        hop = { method: 'GET', body: undefined };
    }
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Redirects followed per admin call (a topic is redirected once, to its owner broker). */
const MAX_REDIRECTS = 5;

/**
 * Where a redirect leads. Only to http(s) without user info, never from https down to http (the
 * token goes along, in its header: never in a URL), and at most MAX_REDIRECTS hops.
 */
function redirectTarget(from: URL, response: Response, what: string, hops: number): URL {
  const location = response.headers.get('location');
  const to = location === null || !URL.canParse(location, from.href) ? undefined : new URL(location, from);
  const refuse = (why: string): PulsarRequestError => new PulsarRequestError(what, response.status, why);
  if (to === undefined) throw refuse('a redirect without a usable Location');
  if (hops >= MAX_REDIRECTS) throw refuse(`more than ${MAX_REDIRECTS} redirects`);
  if ((to.protocol !== 'http:' && to.protocol !== 'https:') || hasUserInfo(to.href)) throw refuse(`not following a redirect to ${printableUrl(to.href)}: only to http(s) URLs without user info`);
  if (from.protocol === 'https:' && to.protocol === 'http:') throw refuse(`not following a redirect from https to ${printableUrl(to.href)}: the token would travel unencrypted`);
  return to;
}

export interface TopicStats {
  readonly subscriptions?: Record<string, SubscriptionStats>;
}

export interface SubscriptionStats {
  readonly msgBacklog?: number;
  readonly unackedMessages?: number;
  readonly consumers?: ReadonlyArray<{ readonly consumerName?: string }>;
}
