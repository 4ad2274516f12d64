// Owns the JSON schemas of the admin API: they validate requests, shape responses and generate the
// OpenAPI document (docs/api/admin.openapi.json). Change a schema here and regenerate the document
// with `node scripts/admin-openapi.ts`.

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const nullableStr = { type: ['string', 'null'] } as const;

export const scopeSchema = {
  description: 'What must go quiet: everything, a route, a table (`db.table` or `table`), a destination or a team. A scope key string (`table:events`) is accepted too.',
  oneOf: [
    { type: 'object', required: ['kind'], additionalProperties: false, properties: { kind: { const: 'all' } } },
    { type: 'object', required: ['kind', 'route'], additionalProperties: false, properties: { kind: { const: 'route' }, route: { type: 'string', minLength: 1 } } },
    { type: 'object', required: ['kind', 'table'], additionalProperties: false, properties: { kind: { const: 'table' }, table: { type: 'string', minLength: 1 } } },
    { type: 'object', required: ['kind', 'destination'], additionalProperties: false, properties: { kind: { const: 'destination' }, destination: { type: 'string', minLength: 1 } } },
    { type: 'object', required: ['kind', 'team'], additionalProperties: false, properties: { kind: { const: 'team' }, team: { type: 'integer', minimum: 0 } } },
    { type: 'string', pattern: '^(all|route:.+|table:.+|destination:.+|team:[0-9]+)$' },
  ],
} as const;

/** Scopes as responses carry them (fast-json-stringify needs one object shape). */
const scopeOut = {
  type: 'object',
  required: ['kind'],
  properties: { kind: { type: 'string', enum: ['all', 'route', 'table', 'destination', 'team'] }, route: str, table: str, destination: str, team: int },
} as const;

export const pauseSchema = {
  type: 'object',
  required: ['id', 'key', 'scope', 'reason', 'by', 'at'],
  properties: {
    id: str,
    key: { ...str, description: 'The scope key: DELETE /v1/pauses/{key} resumes it' },
    scope: scopeOut,
    reason: str,
    by: str,
    at: { ...int, description: 'Milliseconds since the epoch' },
  },
} as const;

const replicaAckSchema = {
  type: 'object',
  required: ['replicaId', 'applied', 'inflight'],
  properties: { replicaId: str, applied: { type: 'boolean' }, inflight: { ...nullableInt, description: 'Inserts on the wire touching the scope; null while not applied' } },
} as const;

export const confirmationSchema = {
  type: 'object',
  required: ['pause', 'quiet', 'replicas', 'waitingFor'],
  properties: {
    pause: pauseSchema,
    quiet: { type: 'boolean', description: 'Every live replica applied the pause and has no insert touching it in flight' },
    replicas: { type: 'array', items: replicaAckSchema },
    waitingFor: { type: 'array', items: replicaAckSchema, description: 'Live replicas not applied yet or with inserts in flight' },
  },
} as const;

export const pauseOutcomeSchema = {
  type: 'object',
  required: [...confirmationSchema.required, 'created', 'state'],
  properties: {
    ...confirmationSchema.properties,
    created: { type: 'boolean', description: 'false: the scope was paused already (the existing pause stays)' },
    state: { type: 'string', enum: ['quiet', 'pending', 'timeout'], description: 'quiet: confirmed; pending: not awaited; timeout: not quiet in time' },
  },
} as const;

export const errorSchema = { type: 'object', required: ['error', 'message'], properties: { error: str, message: str } } as const;

export const pauseBodySchema = {
  type: 'object',
  required: ['scope', 'reason', 'by'],
  additionalProperties: false,
  properties: {
    scope: scopeSchema,
    reason: { type: 'string', minLength: 1, maxLength: 1000 },
    by: { type: 'string', minLength: 1, maxLength: 200, description: 'Who sets it (a person or a system)' },
    wait: { type: 'boolean', default: true, description: 'Answer only once quiet on every live replica (or at the timeout)' },
    timeoutMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 30_000 },
  },
} as const;

const replicaSchema = {
  type: 'object',
  required: ['replicaId', 'host', 'pid', 'live', 'silentMs', 'applied'],
  properties: {
    replicaId: str,
    host: str,
    pid: int,
    live: { type: 'boolean' },
    silentMs: int,
    applied: { type: 'array', items: { type: 'object', required: ['id', 'inflight'], properties: { id: str, inflight: int } } },
  },
} as const;

const laneState = { type: 'string', enum: ['running', 'paused', 'parked', 'backing_off', 'failing'] } as const;

export const statusSchema = {
  type: 'object',
  required: ['replicaId', 'ready', 'routes', 'partitions', 'pauses', 'replicas', 'parkedDestinations', 'bufferedBytesByDestination'],
  properties: {
    replicaId: str,
    ready: { type: 'boolean' },
    routes: {
      type: 'array',
      description: 'One line per route and destination over the partitions this replica owns (worst state wins)',
      items: {
        type: 'object',
        required: ['route', 'table', 'destination', 'state', 'partitions', 'lag', 'lastInsertAt', 'lastErrorClass', 'lastErrorAt', 'insertedRows'],
        properties: {
          route: str,
          table: str,
          destination: str,
          state: laneState,
          partitions: int,
          lag: { ...nullableInt, description: 'Records behind the log end on the owned partitions of the route topic' },
          lastInsertAt: nullableInt,
          lastErrorClass: nullableStr,
          lastErrorAt: nullableInt,
          insertedRows: int,
        },
      },
    },
    partitions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['topic', 'partition', 'committed', 'committable', 'unresolved', 'held', 'lag'],
        properties: {
          topic: str,
          partition: int,
          committed: str,
          committable: { ...str, description: 'The position a commit would store now: every record below it is resolved' },
          unresolved: int,
          held: int,
          lag: nullableInt,
        },
      },
    },
    pauses: { type: 'array', items: pauseSchema },
    replicas: { type: 'array', items: replicaSchema },
    parkedDestinations: { type: 'array', items: str },
    bufferedBytesByDestination: { type: 'object', additionalProperties: int },
  },
} as const;

export const readinessSchema = {
  type: 'object',
  required: ['ready', 'lifecycle', 'control', 'partitions', 'stuck', 'reasons'],
  properties: {
    ready: { type: 'boolean' },
    lifecycle: { type: 'string', enum: ['starting', 'running', 'stopping'] },
    control: { type: 'string', enum: ['reading', 'following', 'silent'] },
    partitions: int,
    stuck: {
      type: 'array',
      items: { type: 'object', required: ['topic', 'partition', 'committed', 'unresolved', 'sinceMs'], properties: { topic: str, partition: int, committed: str, unresolved: int, sinceMs: int } },
    },
    reasons: { type: 'array', items: str },
  },
} as const;
