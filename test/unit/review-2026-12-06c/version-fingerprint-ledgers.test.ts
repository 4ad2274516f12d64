// Review 2026-12-06c (the table's definition version in the schema fingerprint; the review, its
// findings and its invariant are described in version-fingerprint-review.test.ts), controls only:
// ledgers written by the previous release (a fingerprint without the version), processes killed
// around a change and its revert (a shared MemoryLedgerStore), and definitionVersion over the shapes
// a server may answer. The world these drive is in world.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import { rowEncoderFor } from '../../../src/encode/types.ts';
import { definitionVersion } from '../../../src/sink/clickhouse/dedup.ts';
import { expectExactlyOnce, marks, type Letter } from '../../helpers/exactly-once.ts';
import { HeldDeadLetters, TokenWarehouse, TOPIC, until } from '../../helpers/pipeline-world.ts';
import { base, config, currentFingerprint, engineRow, extra, hang, legacyFingerprint, records, runToEnd, schemaOf, scriptedSink, startProcess, storedLedger, type TableState } from './world.ts';

// ---------------------------------------------------------------------------------------------
// Ledgers written before the change; crashes around a change and its revert (controls)
// ---------------------------------------------------------------------------------------------

test('control (upgrade): an intent whose fingerprint was recorded without the version (previous release), replayed after an ALTER that makes u4 invalid: in doubt, u4 left out marked, the rest deduplicated', async () => {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  let now: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:00', u4Valid: true };
  // Process A stores the insert and is killed before its answer.
  const a = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store, signal) => {
      await store(true);
      return hang(signal);
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => w.rows.length === 10, 'A stored its insert');
  await pa.pipeline.destroy();
  // The ledger as the previous release wrote it: the column-only fingerprint.
  const json = await storedLedger(ledgers);
  const encoding = config.routes[0]?.encoding ?? 'passthrough';
  const format = rowEncoderFor(base, encoding, {}).encoder.format;
  const intent = json.intents[0];
  assert.ok(intent !== undefined);
  assert.deepEqual(intent.schemas, [currentFingerprint(base, definitionVersion(engineRow(now)), encoding, format)], 'the recorded fingerprint is reproduced');
  intent.schemas = [legacyFingerprint(base, encoding, format)];
  await ledgers.save(TOPIC, 0, json);
  now = { columns: [...base, extra], metadataVersion: 0, mtime: '2026-12-06 11:00:00', u4Valid: false };
  const b = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store) => store(now.u4Valid),
  );
  const letters = await runToEnd(b.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
  assert.equal(w.uuids().length, 10, 'only the first attempt stored rows');
});

test('control (upgrade, no change at all): a legacy fingerprint makes a replayed range refused for u4 in doubt (u4 marked although it never landed): safe and live', async () => {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  const table: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:00', u4Valid: false };
  let sent = false;
  const a = scriptedSink(
    w,
    () => schemaOf(table),
    async (_n, _batch, _store, signal) => {
      sent = true;
      return hang(signal); // killed during its first insert (not stored)
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => sent, 'A sent its insert');
  await pa.pipeline.destroy();
  const json = await storedLedger(ledgers);
  const encoding = config.routes[0]?.encoding ?? 'passthrough';
  const format = rowEncoderFor(base, encoding, {}).encoder.format;
  for (const i of json.intents) i.schemas = [legacyFingerprint(base, encoding, format)];
  await ledgers.save(TOPIC, 0, json);
  const b = scriptedSink(
    w,
    () => schemaOf(table),
    async (_n, _batch, store) => store(false),
  );
  const letters = await runToEnd(b.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

/**
 * Process A reads (C, v5); its insert meets an ALTER (v6, u4 valid), is stored, the ALTER is
 * reverted (v7) and A is killed before the answer. Process B replays; when `killB`, B is killed once
 * it has left u4 out and sends the rest (held), and process C finishes.
 */
async function crashAroundRevert(killB: boolean): Promise<{ w: TokenWarehouse; letters: Letter[] }> {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  let now: TableState = { columns: base, metadataVersion: 5, mtime: '2026-12-06 10:00:00', u4Valid: false };
  const a = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store, signal) => {
      now = { columns: [...base, extra], metadataVersion: 6, mtime: '2026-12-06 10:00:01', u4Valid: true };
      await store(true);
      now = { columns: base, metadataVersion: 7, mtime: '2026-12-06 10:00:02', u4Valid: false };
      return hang(signal);
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => w.rows.length === 10 && now.metadataVersion === 7, 'A stored its insert');
  await pa.pipeline.destroy();
  const letters: Letter[] = [];
  if (killB) {
    const lettersB = new HeldDeadLetters();
    let restSent = false;
    const b = scriptedSink(
      w,
      () => schemaOf(now),
      async (_n, batch, store, signal) => {
        if (batch.rows === 10) return store(false);
        restSent = true;
        return hang(signal); // the rest (u4 left out) never answered: B is killed
      },
    );
    const pb = startProcess({ sink: b.factory, deadLetters: lettersB, ledgers });
    void pb.source.append(records(10));
    await until(() => restSent, 'B sent the rest');
    await pb.pipeline.destroy();
    letters.push(...lettersB.written);
  }
  const c = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store) => store(now.u4Valid),
  );
  letters.push(...(await runToEnd(c.factory, ledgers)));
  return { w, letters };
}

test('control (crash): killed while an insert stored under a change that is then reverted: the replay is in doubt (v5 recorded, v7 read), u4 left out marked, the rest deduplicated', async () => {
  const { w, letters } = await crashAroundRevert(false);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

test('control (crash twice): the replaying process is killed after leaving u4 out, while the rest is in flight: the third owner re-sends the rest under the same token, u4 marked once', async () => {
  const { w, letters } = await crashAroundRevert(true);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

// ---------------------------------------------------------------------------------------------
// definitionVersion over the shapes a server may answer
// ---------------------------------------------------------------------------------------------

test('control: definitionVersion reads metadata_version as a number or a string, falls back to the mtime at 0 or when missing (servers before 24.2), and knows nothing at the epoch', () => {
  const row = { engine: 'MergeTree', engine_full: 'MergeTree ORDER BY x', defaults: [] as string[] };
  assert.equal(definitionVersion({ ...row, metadata_version: 3, metadata_modification_time: '2026-12-06 10:00:00' }), 'v3');
  assert.equal(definitionVersion({ ...row, metadata_version: '3', metadata_modification_time: '2026-12-06 10:00:00' }), 'v3');
  assert.equal(definitionVersion({ ...row, metadata_version: 0, metadata_modification_time: '2026-12-06 10:00:00' }), 't2026-12-06 10:00:00');
  assert.equal(definitionVersion({ ...row, metadata_modification_time: '2026-12-06 10:00:00' }), 't2026-12-06 10:00:00');
  assert.equal(definitionVersion({ ...row, metadata_version: 0, metadata_modification_time: '1970-01-01 00:00:00' }), undefined);
  assert.equal(definitionVersion(row), undefined);
});
