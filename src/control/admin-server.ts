// Owns the admin HTTP listener (Fastify): probes and metrics (open), the v1 API for status and pauses
// (reads open, every mutating call behind a bearer token), and the OpenAPI document generated from the
// route schemas. It holds no state of its own: it asks the pause registry, the pipeline and readiness.
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { Registry } from 'prom-client';
import type { Secret } from '../config/secret.ts';
import { InserterError, errorMessage } from '../errors/inserter-error.ts';
import type { Logger } from '../telemetry/logger.ts';
import { BearerAuth } from './admin-auth.ts';
import { confirmationSchema, errorSchema, pauseBodySchema, pauseOutcomeSchema, pauseSchema, readinessSchema, statusSchema } from './admin-schemas.ts';
import type { PauseRegistry, PipelineControl } from './pause-registry.ts';
import type { Readiness } from './readiness.ts';
import { scopeKey, type Pause, type PauseScope } from './scope.ts';
import { partitionLines, routeLines, type LagLookup } from './status-view.ts';
import { parseScope, parseScopeKey } from './wire.ts';

export type PauseControl = Pick<PauseRegistry, 'replicaId' | 'pause' | 'resume' | 'pauses' | 'confirmation' | 'replicas' | 'waitQuiet'>;

export interface AdminServerDeps {
  readonly registry: PauseControl;
  readonly pipeline: Pick<PipelineControl, 'status'>;
  readonly readiness: Pick<Readiness, 'check'>;
  readonly metrics: Registry;
  /** Brings computed gauges up to date before a scrape. */
  readonly refreshMetrics?: () => void;
  readonly lag?: LagLookup;
  readonly token: Secret;
  readonly logger: Logger;
  readonly version: string;
  /** Bounds of unauthenticated long polls (GET /v1/pauses/{key}?waitMs); defaults in OPEN_POLLS. */
  readonly openPolls?: Partial<OpenPollBounds>;
}

export interface OpenPollBounds {
  /** Longest wait granted without the bearer token; a longer waitMs is cut to this. */
  readonly maxWaitMs: number;
  /** Unauthenticated long polls waiting at once; one more is answered 429. */
  readonly maxConcurrent: number;
}

/** A poll without the token is bounded in time and in number; with it, waitMs is honoured (≤ 600 s). */
export const OPEN_POLLS: OpenPollBounds = { maxWaitMs: 30_000, maxConcurrent: 16 };

interface PauseBody {
  scope: PauseScope | string;
  reason: string;
  by: string;
  wait: boolean;
  timeoutMs: number;
}

const open = { security: [] };
const bearer = { security: [{ bearer: [] }] };
const denied = { 401: { description: 'No bearer token', ...errorSchema }, 403: { description: 'Wrong bearer token', ...errorSchema } };

export function pauseView(pause: Pause): Pause & { key: string } {
  return { ...pause, key: scopeKey(pause.scope) };
}

/** Builds the app (not listening): the server, tests and the OpenAPI generator share it. */
export async function buildAdminApp(deps: AdminServerDeps): Promise<FastifyInstance> {
  const app = fastify({ logger: false, ajv: { customOptions: { removeAdditional: false } }, forceCloseConnections: true });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'inserter admin API', version: deps.version, description: 'Status, cluster-wide pauses, metrics and probes of one inserter replica (docs/operations.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      tags: [{ name: 'pauses' }, { name: 'status' }, { name: 'probes' }],
    },
  });
  app.setErrorHandler((error: { validation?: unknown; statusCode?: number; message: string }, _request, reply) => {
    if (error.validation !== undefined) return reply.code(400).send({ error: 'INSERTER_ADMIN_BAD_REQUEST', message: error.message });
    if (error instanceof InserterError && error.retryable) return reply.code(503).send({ error: error.code, message: error.message });
    deps.logger.error({ err: error }, 'admin request failed');
    return reply.code(error.statusCode ?? 500).send({ error: error instanceof InserterError ? error.code : 'INSERTER_ADMIN_ERROR', message: errorMessage(error) });
  });
  await app.register(async (probes) => probesPlugin(probes, deps));
  await app.register(async (v1) => v1Plugin(v1, deps), { prefix: '/v1' });
  return app;
}

async function probesPlugin(app: FastifyInstance, deps: AdminServerDeps): Promise<void> {
  app.get(
    '/healthz',
    { schema: { ...open, tags: ['probes'], summary: 'The process is alive', response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string' } } } } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    { schema: { ...open, tags: ['probes'], summary: 'Running, control topic followed, no partition stuck (docs/operations.md)', response: { 200: readinessSchema, 503: readinessSchema } } },
    async (_req, reply) => {
      const report = deps.readiness.check();
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );
  app.get('/metrics', { schema: { ...open, tags: ['probes'], summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    deps.refreshMetrics?.();
    const text = await deps.metrics.metrics();
    return reply.type(deps.metrics.contentType).send(text);
  });
}

async function v1Plugin(app: FastifyInstance, deps: AdminServerDeps): Promise<void> {
  const auth = new BearerAuth(deps.token);
  const bounds: OpenPollBounds = { ...OPEN_POLLS, ...deps.openPolls };
  let openPolls = 0;
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method === 'GET' || request.method === 'HEAD') return;
    const result = auth.check(request.headers.authorization);
    if (result === 'ok') return;
    deps.logger.warn({ method: request.method, url: request.url, ip: request.ip, result }, 'admin call rejected');
    if (result === 'missing') return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'INSERTER_ADMIN_UNAUTHORIZED', message: 'Authorization: Bearer <token> is required' });
    return reply.code(403).send({ error: 'INSERTER_ADMIN_FORBIDDEN', message: 'the bearer token is not valid' });
  });

  app.get('/status', { schema: { ...open, tags: ['status'], summary: 'This replica: routes and destinations, partitions, pauses, replicas', response: { 200: statusSchema } } }, async () => {
    const status = deps.pipeline.status();
    const lag = deps.lag ?? (() => undefined);
    return {
      replicaId: deps.registry.replicaId,
      ready: deps.readiness.check().ready,
      routes: routeLines(status, lag),
      partitions: partitionLines(status, lag),
      pauses: deps.registry.pauses().map(pauseView),
      replicas: deps.registry.replicas(),
      parkedDestinations: status.parkedDestinations,
      bufferedBytesByDestination: status.bufferedBytesByDestination,
    };
  });

  app.get(
    '/pauses',
    {
      schema: {
        ...open,
        tags: ['pauses'],
        summary: 'Pauses in force and how far each is confirmed',
        response: { 200: { type: 'object', required: ['pauses'], properties: { pauses: { type: 'array', items: confirmationSchema } } } },
      },
    },
    async () => ({
      pauses: deps.registry.pauses().flatMap((p) => {
        const c = deps.registry.confirmation(scopeKey(p.scope));
        return c === undefined ? [] : [{ ...c, pause: pauseView(c.pause) }];
      }),
    }),
  );

  app.get<{ Params: { key: string }; Querystring: { waitMs: number } }>(
    '/pauses/:key',
    {
      schema: {
        ...open,
        tags: ['pauses'],
        summary:
          'One pause and its confirmation; with waitMs, answers once quiet or when waitMs has passed (poll). Without the bearer token a wait is cut to 30 s and at most 16 wait at once (429 beyond)',
        params: { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'scope key, e.g. table:events' } } },
        querystring: { type: 'object', additionalProperties: false, properties: { waitMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 } } },
        response: { 200: pauseOutcomeSchema, 404: errorSchema, 429: { description: 'Too many long polls without the bearer token are waiting: retry later, or send the token', ...errorSchema } },
      },
    },
    async (request, reply) => {
      // Without the token a poll waits at most bounds.maxWaitMs, and at most bounds.maxConcurrent wait at once.
      const open = request.query.waitMs > 0 && auth.check(request.headers.authorization) !== 'ok';
      if (open && openPolls >= bounds.maxConcurrent) {
        deps.logger.warn({ url: request.url, ip: request.ip, waiting: openPolls }, 'admin long poll refused: too many without the token');
        return reply
          .code(429)
          .header('retry-after', '1')
          .send({ error: 'INSERTER_ADMIN_TOO_MANY_WAITS', message: `${bounds.maxConcurrent} long polls without the bearer token are already waiting; retry, or send the token` });
      }
      const waitMs = open ? Math.min(request.query.waitMs, bounds.maxWaitMs) : request.query.waitMs;
      if (open) openPolls++;
      let outcome: Awaited<ReturnType<PauseControl['waitQuiet']>>;
      try {
        outcome = await deps.registry.waitQuiet(request.params.key, waitMs);
      } finally {
        if (open) openPolls--;
      }
      if (outcome === undefined) return reply.code(404).send({ error: 'INSERTER_NOT_PAUSED', message: `${request.params.key} is not paused` });
      return { ...outcome, pause: pauseView(outcome.pause), state: outcome.state === 'timeout' && request.query.waitMs === 0 ? 'pending' : outcome.state };
    },
  );

  app.post<{ Body: PauseBody }>(
    '/pauses',
    {
      schema: {
        ...bearer,
        tags: ['pauses'],
        summary: 'Pause a scope on every replica; with wait (default) answers once no insert touching it is in flight anywhere',
        body: pauseBodySchema,
        response: {
          200: { description: 'In force and quiet everywhere', ...pauseOutcomeSchema },
          202: { description: 'In force; not quiet everywhere yet (not awaited, or the timeout passed: see waitingFor)', ...pauseOutcomeSchema },
          400: errorSchema,
          ...denied,
        },
      },
    },
    async (request, reply) => {
      const { scope: raw, reason, by, wait, timeoutMs } = request.body;
      const scope = typeof raw === 'string' ? parseScopeKey(raw) : parseScope(raw);
      if (scope === undefined) return reply.code(400).send({ error: 'INSERTER_ADMIN_BAD_SCOPE', message: 'scope must be all, route:NAME, table:[DB.]TABLE, destination:ID or team:N' });
      const outcome = await deps.registry.pause(scope, reason, by, { wait, timeoutMs });
      deps.logger.info({ scope: scopeKey(scope), by, reason, state: outcome.state, created: outcome.created }, 'pause requested');
      return reply.code(outcome.state === 'quiet' ? 200 : 202).send({ ...outcome, pause: pauseView(outcome.pause) });
    },
  );

  app.delete<{ Params: { key: string } }>(
    '/pauses/:key',
    {
      schema: {
        ...bearer,
        tags: ['pauses'],
        summary: 'Resume a scope: every replica re-reads from its committed positions (exactly once through the ledger)',
        params: { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'scope key, e.g. table:events' } } },
        response: { 200: { type: 'object', required: ['resumed'], properties: { resumed: pauseSchema } }, 404: errorSchema, ...denied },
      },
    },
    async (request, reply) => {
      const resumed = await deps.registry.resume(request.params.key);
      if (resumed === undefined) return reply.code(404).send({ error: 'INSERTER_NOT_PAUSED', message: `${request.params.key} is not paused` });
      deps.logger.info({ scope: request.params.key, id: resumed.id }, 'resume requested');
      return { resumed: pauseView(resumed) };
    },
  );
}

export interface AdminServerOptions extends AdminServerDeps {
  /** host:port; an empty host listens on every interface. */
  readonly listen: string;
}

export class AdminServer {
  readonly #options: AdminServerOptions;
  #app: FastifyInstance | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: AdminServerOptions) {
    this.#options = options;
  }

  /** Starts listening; resolves with the bound address (`http://host:port`). */
  async start(): Promise<string> {
    const colon = this.#options.listen.lastIndexOf(':');
    const host = this.#options.listen.slice(0, colon) || '0.0.0.0';
    const port = Number(this.#options.listen.slice(colon + 1));
    this.#app = await buildAdminApp(this.#options);
    const address = await this.#app.listen({ host, port });
    this.#options.logger.info({ address }, 'admin API listening');
    return address;
  }

  close(): Promise<void> {
    this.#closing ??= this.#app?.close() ?? Promise.resolve();
    return this.#closing;
  }
}
