// Owns reading back and showing the rows of the typed-encoding differential test: the twin tables of
// a DDL (Memory twins keep the rows, Null twins only parse them), every column of every row as
// ClickHouse prints it (bytes never decoded as UTF-8, 64-bit numbers quoted, Enums as numbers, a
// default of the insert's moment as such), and a value or row shown for a divergence message.
import type { DiffCase } from './typed-differential-inputs.ts';
import type { DiffServer } from './typed-differential.ts';

/** CREATE TABLE statements of the four twins of `ddl` (its `{database}.name` and engine replaced). */
export function twinStatements(ddl: string, database: string, table: string): string[] {
  const start = ddl.search(/CREATE TABLE/i);
  const engine = ddl.search(/\)\s*ENGINE\s*=/i);
  if (start < 0 || engine < 0) throw new Error(`not a CREATE TABLE … ENGINE statement: ${ddl.slice(0, 200)}`);
  const body = ddl.slice(ddl.indexOf('(', start), engine + 1);
  const name = (suffix: string): string => `${database}.\`${table}__${suffix}\``;
  return [
    `CREATE TABLE ${name('a')} ${body} ENGINE = Memory`,
    `CREATE TABLE ${name('b')} ${body} ENGINE = Memory`,
    `CREATE TABLE ${name('a_probe')} ${body} ENGINE = Null`,
    `CREATE TABLE ${name('b_probe')} ${body} ENGINE = Null`,
  ];
}

const OUTPUT_SETTINGS = {
  output_format_json_quote_64bit_integers: '1',
  output_format_json_quote_64bit_floats: '1',
  output_format_json_quote_denormals: '1',
  output_format_json_quote_decimals: '1',
  output_format_json_validate_utf8: '0',
};

export interface ColumnRow {
  name: string;
  type: string;
  default_kind: string;
  default_expression: string;
}

/** The table's rows by `_offset`: each row the list of its columns' values as ClickHouse prints them (JSON text, bytes as latin1). */
export async function readRows(server: DiffServer, table: string, columns: readonly ColumnRow[], since: string): Promise<Map<string, string[]>> {
  const select = columns.map((c) => {
    const name = `\`${c.name.replaceAll('`', '\\`')}\``;
    // A default of the insert's moment (inserted_at DEFAULT now64()) differs by nature: shown as such.
    if (/\b(now|now64|today|rand\w*|generateUUID\w*)\s*\(/i.test(c.default_expression) && /^(Nullable\()?DateTime/.test(c.type)) {
      return `if(${name} >= toDateTime64('${since}', 6, 'UTC') AND ${name} <= now64(6) + 5, 'the insert''s moment', toString(${name}))`;
    }
    // An Enum column can hold a value it has no name for (JSONEachRow's null → 0): read as numbers.
    const numeric = c.type.replace(/Enum(8|16)\((?:[^()']|'(?:[^'\\]|\\.)*')*\)/g, 'Int$1');
    return numeric === c.type ? name : `CAST(${name}, '${numeric.replaceAll("'", "\\'")}')`;
  });
  const text = (await server.raw(`SELECT _offset, ${select.join(', ')} FROM ${server.database}.\`${table}\` ORDER BY _offset FORMAT JSONCompactEachRow`, OUTPUT_SETTINGS)).toString('latin1');
  const rows = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const values = JSON.parse(line) as unknown[];
    const offset = String(values[0]);
    if (rows.has(offset)) throw new Error(`${table}: two rows with _offset ${offset}`);
    rows.set(
      offset,
      values.slice(1).map((v) => JSON.stringify(v)),
    );
  }
  return rows;
}

/** A value as read back (latin1 JSON text) shown as UTF-8 where it is, else with \xNN escapes. */
export function shown(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1');
  const text = bytes.toString('utf8');
  const out = Buffer.from(text, 'utf8').equals(bytes) ? text : [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  return out.length > 300 ? `${out.slice(0, 300)}…(${bytes.length} bytes)` : out;
}

/** An accepted row as `column=value`: the columns the mutations name, or all of them. */
export function rowText(columns: readonly ColumnRow[], row: readonly string[] | undefined, c: DiffCase): string {
  if (row === undefined) return '(not read back)';
  const text = c.what.join(' ');
  const input = (c.record.value as Buffer).toString('latin1');
  const pairs = columns.map((column, k) => [column.name, row[k] ?? ''] as const);
  let named = pairs.filter(([name]) => new RegExp(`(^|[^\\w.])${name.replace(/[.*+?^${}()|[\]\\$]/g, '\\$&')}([^\\w.]|$)`).test(text));
  // A hand-written case names no column in its description: the fields of its (short) input then.
  if (named.length === 0 && input.length < 300) named = pairs.filter(([name]) => input.toLowerCase().includes(`"${name.toLowerCase()}"`));
  return (named.length > 0 ? named : pairs).map(([name, value]) => `${name}=${shown(value)}`).join(', ');
}
