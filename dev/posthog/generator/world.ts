// Owns the state one generate() call shares across its messages: the seeded Rng, the simulated
// clock, the Zipf-weighted teams and their users, persons and groups (derived by hashing, so the same
// user always has the same ids), and the slabs the message bytes are written into.
import type { GeneratedMessage, GenerateOptions, PosthogTopic } from './topics.ts';
import { Rng, at, cumulative, hash3, hashString, sampleCdf } from './random.ts';
import { hex8, stableUuid, stableUuid7 } from './ids-and-times.ts';
import { GROUP_TYPES } from './vocabulary.ts';

// Values and keys are written into large shared slabs instead of one allocation each.
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

const DEFAULT_BASE_TIME = Date.UTC(2030, 0, 1);
const DAY_MS = 86_400_000;

export class World {
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
