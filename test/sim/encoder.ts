// The simulation's row encoders: the real ones (encode/types.ts), wrapped so that designated rows are
// refused before any insert, as a typed encoder refuses a value the warehouse would reject
// (INSERTER_ENCODE_REJECTED). The delivery must isolate and dead-letter such a row like one the
// warehouse rejects; the row never reaches the warehouse.
import type { Row } from '../../src/decode/row.ts';
import { rowJson } from '../../src/decode/row.ts';
import { rowEncoderFor, type EncoderFactory, type RowEncoder } from '../../src/encode/types.ts';
import type { ByteSink } from '../../src/encode/byte-chunks.ts';
import { InserterError } from '../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import type { SchemaChanges } from './alter.ts';

class RefusingEncoder implements RowEncoder {
  readonly #inner: RowEncoder;
  readonly #refused: ReadonlySet<string>;
  readonly format: string;
  readonly columns: readonly string[] | undefined;

  constructor(inner: RowEncoder, refused: ReadonlySet<string>) {
    this.#inner = inner;
    this.#refused = refused;
    this.format = inner.format;
    this.columns = inner.columns;
  }

  write(out: ByteSink, record: SourceRecord, row: Row, teamId: number | undefined): void {
    const uuid = (JSON.parse(rowJson(row).toString('utf8')) as { uuid?: unknown }).uuid;
    if (typeof uuid === 'string' && this.#refused.has(uuid)) {
      throw new InserterError('INSERTER_ENCODE_REJECTED', `Cannot parse value of column n for row ${uuid}`, { retryable: false });
    }
    this.#inner.write(out, record, row, teamId);
  }
}

/**
 * The encoders of a simulated process: rows whose uuid is in `refused` are refused by the encoder,
 * and, with schema changes, the victims of every change whose column the live schema has.
 */
export function refusingEncoders(refused: ReadonlySet<string>, changes?: SchemaChanges): EncoderFactory {
  return (columns, encoding, options) => {
    const choice = rowEncoderFor(columns, encoding, options);
    const altered = changes?.encoderRefuses(columns);
    const all = altered === undefined || altered.size === 0 ? refused : new Set([...refused, ...altered]);
    return { encoder: new RefusingEncoder(choice.encoder, all), fallback: choice.fallback };
  };
}
