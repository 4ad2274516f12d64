// Owns the exactly-once protocol of a BigQuery insert (docs/design/bigquery.md): the job ids an
// insert token owns, finding the latest of them, and waiting for a job to finish. A token owns a
// chain of job ids — `inserter_<sha256>` for its first load, `inserter_<sha256>_<n>` for the n-th
// after that many failed ones — because a job id is unique for good: a failed load job would
// otherwise burn its token, and a token must be retryable after a failure that loaded nothing
// (backendError, quota) just as ClickHouse forgets a token whose insert failed. A job of the chain
// is only ever created after the one before it was seen DONE with an error, so the ids that exist
// are always a prefix of the chain and all but the last of them failed. Every jobs.get is asked in a
// location (a job in a single region is found only there): the lookup in the dataset's, the wait in
// the job's own as its resource names it.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorClasses } from '../../errors/classes.ts';
import { AbortedError } from '../../errors/inserter-error.ts';
import { WarehouseError } from '../errors.ts';
import { locationOf, type BigQueryApi, type JobResource } from './api.ts';
import type { ErrorProto } from './classify.ts';

/** The first job id of a token's chain: `inserter_` + SHA-256 of (project, dataset, table, token). */
export function baseJobId(project: string, dataset: string, table: string, token: string): string {
  return `inserter_${createHash('sha256').update(`${project}\0${dataset}\0${table}\0${token}`).digest('hex')}`;
}

/** The job id of the chain's attempt `index` (0: the base id itself). */
export function chainJobId(base: string, index: number): string {
  return index === 0 ? base : `${base}_${index}`;
}

export type JobOutcome =
  | { readonly state: 'running' }
  | { readonly state: 'failed'; readonly error: ErrorProto }
  /** rows: statistics.load.outputRows; undefined when the server does not say (the emulator never does). */
  | { readonly state: 'succeeded'; readonly rows: number | undefined };

export function outcomeOf(job: JobResource): JobOutcome {
  if (job.status?.state !== 'DONE') return { state: 'running' };
  const error = job.status.errorResult;
  if (error !== undefined && error !== null) return { state: 'failed', error };
  const rows = Number(job.statistics?.load?.outputRows);
  return { state: 'succeeded', rows: Number.isSafeInteger(rows) && rows >= 0 ? rows : undefined };
}

export interface LatestJob {
  /** Index of the chain's last existing job; -1 when the token has no job yet. */
  readonly index: number;
  readonly job: JobResource | undefined;
}

/** Failed loads of one token before its chain is taken to be broken (no real chain gets near). */
const MAX_CHAIN = 2 ** 20;

/**
 * The last existing job of a token's chain, by galloping then bisecting over jobs.get (existence is
 * a prefix of the chain): two reads for a token seen never or once, O(log n) after n failures.
 */
export async function latestJob(api: BigQueryApi, base: string, location: string | undefined, signal: AbortSignal | undefined): Promise<LatestJob> {
  const first = await api.getJob(base, location, signal);
  if (first === undefined) return { index: -1, job: undefined };
  let found = 0;
  let foundJob: JobResource = first;
  // Gallop: 1, 3, 7, 15… until an index has no job.
  let missing = -1;
  for (let step = 1; missing < 0; step *= 2) {
    const probe = found + step;
    // A server that has every id is not BigQuery (a proxy answering 200 to anything): stop.
    if (probe > MAX_CHAIN) throw new WarehouseError(ErrorClasses.unknown, `jobs.get finds a job for every id of the chain of ${base}: not a BigQuery jobs API`, undefined, undefined);
    const job = await api.getJob(chainJobId(base, probe), location, signal);
    if (job === undefined) missing = probe;
    else {
      found = probe;
      foundJob = job;
    }
  }
  // Bisect between the last index found and the first one missing.
  while (missing - found > 1) {
    const middle = Math.floor((found + missing) / 2);
    const job = await api.getJob(chainJobId(base, middle), location, signal);
    if (job === undefined) missing = middle;
    else {
      found = middle;
      foundJob = job;
    }
  }
  return { index: found, job: foundJob };
}

/** First and largest pause between two jobs.get while a job runs. */
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 2000;

/**
 * Polls jobs.get until the job is DONE, in the job's own location (its resource's `jobReference`;
 * `location` when it names none). The signal ends the wait, never the job; so does `timeoutMs` (the
 * destination's requestTimeoutMs), as unknown_insert_status: the job may still load, and a retry
 * under the same token waits for this same job instead of loading again.
 */
export async function waitDone(api: BigQueryApi, jobId: string, job: JobResource, location: string | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<JobResource> {
  const where = locationOf(job.jobReference?.location) ?? location;
  const deadline = Date.now() + timeoutMs;
  let pause = POLL_FIRST_MS;
  let current = job;
  while (outcomeOf(current).state === 'running') {
    if (Date.now() + pause > deadline) {
      throw new WarehouseError(ErrorClasses.unknownInsertStatus, `load job ${jobId} is still ${current.status?.state ?? 'pending'} after ${timeoutMs} ms; a retry waits for it`, undefined, undefined);
    }
    try {
      await sleep(pause, undefined, signal === undefined ? undefined : { signal });
    } catch (error) {
      throw new AbortedError(`waiting for load job ${jobId} aborted`, { cause: error });
    }
    pause = Math.min(POLL_MAX_MS, Math.round(pause * 1.5));
    const next = await api.getJob(jobId, where, signal);
    // Created and gone: only a job deleted by someone else; the token's outcome is unknown.
    if (next === undefined) throw new WarehouseError(ErrorClasses.unknownInsertStatus, `load job ${jobId} disappeared while running`, undefined, undefined);
    current = next;
  }
  return current;
}
