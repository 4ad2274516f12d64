// Owns choosing the column writer for a ClickHouse type, once per schema version: the types
// PostHog's tables use, and why any other type is not covered (the route then stays pass-through).
import type { ColumnWriter } from './column-writer.ts';
import { ArrayWriter, MapWriter, NullableWriter } from './composite.ts';
import { DateTime64Writer, DateTimeWriter, DateWriter, isUtcZone } from './dates.ts';
import { BoolWriter, IntWriter } from './integers.ts';
import { EnumWriter, FixedStringWriter, StringWriter, UuidWriter } from './strings.ts';
import { parseType, typeText, type TypeArg, type TypeNode } from './type-parser.ts';

export interface WriterOptions {
  /** The server's time zone (`SELECT timezone()`): DateTime columns without their own zone are read in it. */
  readonly serverTimezone: string;
}

/** The writer for `type`, or a string saying why the type is not covered. */
export function writerFor(type: string, options: WriterOptions): ColumnWriter | string {
  let node: TypeNode;
  try {
    node = parseType(type);
  } catch (error) {
    return `cannot read the type: ${(error as Error).message}`;
  }
  return build(node, options);
}

/** Int8…UInt64: [bits, signed] (the direct field writers, field-writers.ts, choose by it too). */
export const INTS: Readonly<Record<string, readonly [number, boolean]>> = {
  Int8: [8, true],
  Int16: [16, true],
  Int32: [32, true],
  Int64: [64, true],
  UInt8: [8, false],
  UInt16: [16, false],
  UInt32: [32, false],
  UInt64: [64, false],
};

function typeArg(arg: TypeArg | undefined): TypeNode | undefined {
  return arg?.kind === 'type' ? arg.type : undefined;
}

function build(node: TypeNode, options: WriterOptions): ColumnWriter | string {
  const text = typeText(node);
  const { name, args } = node;
  const int = INTS[name];
  if (int !== undefined && args.length === 0) return new IntWriter(text, int[0], int[1]);
  switch (name) {
    case 'String':
      return new StringWriter(text);
    case 'Bool':
      return new BoolWriter(text);
    case 'UUID':
      return new UuidWriter(text);
    case 'FixedString': {
      const n = args[0];
      return n?.kind === 'number' && n.value > 0 ? new FixedStringWriter(text, n.value) : `unsupported ${text}`;
    }
    case 'Date':
      return new DateWriter(text, false);
    case 'Date32':
      return new DateWriter(text, true);
    case 'DateTime': {
      const zone = args[0]?.kind === 'string' ? args[0].value : options.serverTimezone;
      if (!isUtcZone(zone)) return `${text} is read in time zone ${zone}; only UTC is covered`;
      return new DateTimeWriter(text);
    }
    case 'DateTime64': {
      const scale = args[0];
      const zone = args[1]?.kind === 'string' ? args[1].value : options.serverTimezone;
      if (scale?.kind !== 'number' || scale.value < 0 || scale.value > 9) return `unsupported ${text}`;
      if (!isUtcZone(zone)) return `${text} is read in time zone ${zone}; only UTC is covered`;
      return new DateTime64Writer(text, scale.value);
    }
    case 'Enum8':
    case 'Enum16': {
      const entries = [];
      for (const a of args) {
        if (a.kind !== 'enum') return `unsupported ${text}`;
        entries.push({ name: a.name, value: a.value });
      }
      if (entries.length === 0) return `unsupported ${text}`;
      return new EnumWriter(text, name === 'Enum8' ? 8 : 16, entries);
    }
    case 'Nullable':
    case 'LowCardinality':
    case 'Array': {
      const inner = typeArg(args[0]);
      if (inner === undefined || args.length !== 1) return `unsupported ${text}`;
      const writer = build(inner, options);
      if (typeof writer === 'string') return writer;
      if (name === 'LowCardinality') return writer;
      if (name === 'Array') return new ArrayWriter(text, writer);
      if (writer.nullable) return `unsupported ${text}`;
      return new NullableWriter(text, writer);
    }
    case 'Map': {
      const key = typeArg(args[0]);
      const value = typeArg(args[1]);
      if (key === undefined || value === undefined || key.name !== 'String' || key.args.length > 0) return `${text}: only Map(String, …) is covered`;
      const writer = build(value, options);
      return typeof writer === 'string' ? writer : new MapWriter(text, writer);
    }
    case 'SimpleAggregateFunction': {
      const inner = typeArg(args[1]);
      if (inner === undefined || args.length !== 2) return `unsupported ${text}`;
      return build(inner, options);
    }
    default:
      return `type ${text} is not covered by the typed encoder`;
  }
}
