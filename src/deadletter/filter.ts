// Owns which dead letters a `dlq list|replay` selects: the flags parsed and checked (every problem
// named), the dead-letter topics they mean for a config, and the match of one dead letter.
import type { Config } from '../config/load.ts';
import type { DeadLetter } from './record.ts';
import { DlqUsageError } from './dlq-errors.ts';

export interface DlqFilter {
  readonly route?: string;
  readonly topic?: string;
  readonly classes?: ReadonlySet<string>;
  readonly team?: number;
  /** `db.table`, or a bare table name matching it in any database. */
  readonly table?: string;
  /** Dead-lettered at or after. */
  readonly since?: Date;
  /** Dead-lettered before. */
  readonly until?: Date;
  readonly limit?: number;
}

export type FilterFlags = Readonly<Partial<Record<'route' | 'topic' | 'class' | 'team' | 'table' | 'since' | 'until' | 'limit', string | undefined>>>;

/** The parseArgs options of the filter flags, shared by `list` and `replay`. */
export const filterOptions = {
  route: { type: 'string' },
  topic: { type: 'string' },
  class: { type: 'string' },
  team: { type: 'string' },
  table: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
} as const;

const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export function parseFilter(flags: FilterFlags): DlqFilter {
  const issues: string[] = [];
  const filter: { -readonly [K in keyof DlqFilter]: DlqFilter[K] } = {};
  if (flags.route !== undefined && flags.topic !== undefined) issues.push('--route and --topic exclude each other');
  if (flags.route !== undefined) filter.route = nonEmpty('--route', flags.route, issues);
  if (flags.topic !== undefined) filter.topic = nonEmpty('--topic', flags.topic, issues);
  if (flags.class !== undefined) {
    const classes = flags.class
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c !== '');
    if (classes.length === 0) issues.push('--class: name at least one error class (e.g. row_data,decode)');
    else filter.classes = new Set(classes);
  }
  if (flags.team !== undefined) {
    if (/^-?\d+$/.test(flags.team) && Number.isSafeInteger(Number(flags.team))) filter.team = Number(flags.team);
    else issues.push(`--team: ${JSON.stringify(flags.team)} is not an integer team id`);
  }
  if (flags.table !== undefined) {
    if (/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$/.test(flags.table)) filter.table = flags.table;
    else issues.push(`--table: ${JSON.stringify(flags.table)} is not db.table or table`);
  }
  if (flags.since !== undefined) filter.since = time('--since', flags.since, issues);
  if (flags.until !== undefined) filter.until = time('--until', flags.until, issues);
  if (filter.since !== undefined && filter.until !== undefined && filter.since >= filter.until) issues.push('--since must be before --until');
  if (flags.limit !== undefined) {
    if (/^\d+$/.test(flags.limit) && Number(flags.limit) > 0) filter.limit = Number(flags.limit);
    else issues.push(`--limit: ${JSON.stringify(flags.limit)} is not a positive integer`);
  }
  if (issues.length > 0) throw new DlqUsageError(issues.join('; '));
  return filter;
}

function nonEmpty(flag: string, value: string, issues: string[]): string | undefined {
  if (value.trim() === '') issues.push(`${flag} must not be empty`);
  return value.trim() === '' ? undefined : value;
}

function time(flag: string, value: string, issues: string[]): Date | undefined {
  const ms = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    issues.push(`${flag}: ${JSON.stringify(value)} is not an ISO 8601 time (e.g. 2025-01-31T12:00:00Z)`);
    return undefined;
  }
  return new Date(ms);
}

/** The dead-letter topics to read: the one named, the route's, or every route's (each once). */
export function deadLetterTopics(config: Config, filter: DlqFilter): string[] {
  if (filter.topic !== undefined) return [filter.topic];
  const routes = filter.route === undefined ? config.routes : config.routes.filter((r) => r.name === filter.route);
  if (routes.length === 0) throw new DlqUsageError(`--route: no route named ${JSON.stringify(filter.route)} (routes: ${config.routes.map((r) => r.name).join(', ')})`);
  return [...new Set(routes.map((r) => r.deadLetterTopic ?? `${r.topic}.dlq`))];
}

export function matches(filter: DlqFilter, letter: DeadLetter): boolean {
  if (filter.route !== undefined && letter.route !== filter.route) return false;
  if (filter.classes !== undefined && (letter.errorClass === undefined || !filter.classes.has(letter.errorClass))) return false;
  if (filter.team !== undefined && letter.team !== filter.team) return false;
  if (filter.table !== undefined) {
    const table = letter.table ?? '';
    if (filter.table.includes('.') ? table !== filter.table : table.slice(table.indexOf('.') + 1) !== filter.table) return false;
  }
  if (filter.since !== undefined && letter.at < filter.since) return false;
  if (filter.until !== undefined && letter.at >= filter.until) return false;
  return true;
}

/** The matching dead letters, in topic/partition/offset order, at most `limit`. */
export function select(filter: DlqFilter, letters: Iterable<DeadLetter>): DeadLetter[] {
  const out: DeadLetter[] = [];
  for (const letter of letters) {
    if (!matches(filter, letter)) continue;
    out.push(letter);
    if (filter.limit !== undefined && out.length >= filter.limit) break;
  }
  return out;
}
