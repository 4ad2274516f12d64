// Owns clickhouse_session_recording_events: snapshot chunks of base64 data sliced from one shared
// pool, mostly small, a configurable share large (900-990 KB) yet always under Kafka's 1 MB message.
import type { GeneratedMessage } from './topics.ts';
import { TOPICS } from './topics.ts';
import { Rng } from './random.ts';
import { stableUuid7, ts6, uuid4 } from './ids-and-times.ts';
import type { World } from './world.ts';

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

const MAX_MESSAGE_BYTES = 1_000_000;

export function* sessionRecordingEvents(w: World, count: number): Generator<GeneratedMessage> {
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
