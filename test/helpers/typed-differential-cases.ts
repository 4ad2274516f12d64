// Owns the hand-written cases of the typed-encoding differential test: the smallest input of each
// divergence found so far (docs/design/typed-differential-findings.md, by number) and of edge cases
// the two paths agree on and must keep agreeing on. They run on the all_types table's columns and on
// `groups` (a table whose every column a message can fill, for what happens once all are seen).
import { handCase, type DiffCase } from './typed-differential-inputs.ts';
import type { Divergence } from './typed-differential.ts';
import type { Piece } from './typed-differential-values.ts';

const raw = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** [input, what it shows] on the all_types columns (findings number in brackets). */
const ALL_TYPES: ReadonlyArray<readonly [Piece, string]> = [
  ['{"S":"upper-cased key"}', '[D1] a key differing only in case fills the column'],
  ['{"I32":7,"s":"x"}', '[D1] upper-cased integer key'],
  ['{"s":"a","S":"b"}', '[D1] the same column twice, differing in case: refused as a duplicate'],
  ['{"s":"\\uZZZZ"}', '[D2] \\u with non-hex digits in a String'],
  ['{"s":"x\\udc00y"}', '[D2] a lone low surrogate in a String'],
  ['{"s":"\\ud800"}', '[D2] a lone high surrogate at the end of a String (refused by both)'],
  ['{"s":"bad\\qescape"}', '[D2] an unknown escape in a String'],
  ['{"s":{"k":"\\ud800"}}', '[D3] an object with a lone surrogate read into a String (copied raw)'],
  ['{"s":["\\uZZZZ"]}', '[D3] an array with a bad escape read into a String'],
  ['{"a_s":[{"k":"\\ud800"}],"a_ns":[{"k":"\\uZZZZ"},null]}', '[D3] objects with odd escapes as elements of Array(String) and Array(Nullable(String))'],
  ['{"m":{"a":{"k":"\\ud800"},"b":["\\uZZZZ"]}}', '[D3] an object and an array with odd escapes as Map(String, String) values'],
  ['{"s_lc":{"k":"\\ud800"},"s_n":["\\ud800"]}', '[D3] objects and arrays with a lone surrogate into LowCardinality(String) and Nullable(String)'],
  ['{"unknown":"\\uZZZZ","s":"x"}', '[D3] an unknown field with a bad escape is skipped'],
  ['{"unknown":{"k":"\\ud800"},"s":"x"}', '[D3] an unknown field with a lone surrogate (refused by both)'],
  ['{"dt64_3":"20240102030405"}', '[D4] 14 digits in a DateTime64(3) string'],
  ['{"dt64_6":"20240102030405"}', '[D4] 14 digits in a DateTime64(6) string'],
  ['{"dt64_3":"17041646450"}', '[D4] 11 digits in a DateTime64(3) string'],
  ['{"dt":"20240102030405"}', '[D4] 14 digits in a DateTime string'],
  ['{"dt":"17041646450"}', '[D4] 11 digits in a DateTime string'],
  ['{"d":"20240102"}', '[D4] 8 digits in a Date string'],
  ['{"dt64_3":"-853255185"}', '[D5, taken since d63166c] a negative unix time in a DateTime64 string'],
  ['{"dt":"-853255185"}', '[D5] a negative unix time in a DateTime string'],
  ['{"dt64_3":-853255185}', 'a negative number for DateTime64'],
  ['{"dt64_3n":"","e16":"z","d":"2020-02-08"}', '[D5] an empty DateTime64 string followed by 19+ bytes (ClickHouse reads past the quote)'],
  ['{"dt64_def":"0","fs4":"","s":"Créer"}', '[D5] "0" for a DateTime64 followed by 19+ bytes'],
  ['{"dt64_3n":""}', 'an empty DateTime64 string at the end of the row (refused by both)'],
  ['{"dt64_6":"x","fs4":"","fs16":"abcdefghijklm"}', '[D5] "x" for a DateTime64 followed by 19+ bytes'],
  ['{"a_dt64":["2024-13-01 00:00:00","0","1971-05-08T00:00:00"]}', '[D5] "0" inside an Array(DateTime64) followed by 19+ bytes'],
  ['{"dt64_6":"x"}', '"x" for a DateTime64 at the end of the row (refused by both)'],
  ['{"d":true,"s":"x"}', '[D9] true for a Date'],
  ['{"d":false,"s":"x"}', '[D9] false for a Date'],
  ['{"dt":true,"s":"x"}', 'true for a DateTime (refused by both)'],
  ['{"e8":null}', 'null for an Enum8 without 0 (JSONEachRow stores 0)'],
  ['{"e8":0}', 'an Enum8 number that is not an element'],
  ['{"i32_def":null,"s_def":null,"dt64_def":null}', 'null for columns with a DEFAULT'],
  ['{"s_n":null,"i64_n":null,"u_n":null,"dt_n":null,"b_n":null,"s_lcn":null}', 'null for Nullable columns'],
  ['{"a_s":null,"m":null,"a_ns":[null,"x"]}', 'null for an Array and a Map, null in an Array(Nullable)'],
  ['{"s":"x","s_mat":5,"s_alias":"y"}', 'values for MATERIALIZED and ALIAS columns are skipped'],
  ['{"u":"{61f0c404-5cb3-11e7-907b-a6006ad3dba0}"}', 'a UUID in braces'],
  ['{"u":"61F0C4045CB311E7907BA6006AD3DBA0"}', 'a UUID without dashes, upper case'],
  ['{"b":"on","b_n":"yes"}', 'Bool from words'],
  ['{"i8":128,"u8":-1,"u64":18446744073709551616}', 'integers out of range'],
  ['{"i32":"1e2","i64":1.5,"u16":true}', 'integers from a float string, a float, a boolean'],
  ['{"fs4":"ééé"}', 'a FixedString(4) given 6 bytes'],
  ['{"m":{"a":"1","a":"2"}}', 'a Map with a duplicate key'],
  ['{"a_i32":"[1,2]"}', 'an array in a string for Array(Int32)'],
  [raw('{"s":"', [0xff, 0xfe], '","a_s":["', [0xc0, 0xaf], '"]}'), 'invalid UTF-8 in a String and in an Array(String)'],
  [' {\t"s" : "spaced" ,\n"i8"\r\n:\t1 } ', 'whitespace between every token'],
  ['{"\\u0073":"escaped key","\\u0049\\u0038":5}', 'keys written wholly as escapes (one also upper-cased)'],
  ['{"\\uZZZZ":"x","s":"y"}', 'a key with a bad \\u escape (unknown, skipped)'],
  ['{"s\\ud800":"x","s":"y"}', 'a key with a lone high surrogate'],
  ['{"s\\udc00":"x","s":"y"}', 'a key with a lone low surrogate'],
  [raw('{"s', [0xff], '":"x","s":"y"}'), 'a key with invalid UTF-8'],
  ['{"s\\u0000":"x","s":"y"}', 'a key with a NUL escape'],
  ['{}', 'an empty object: every column its default'],
  ['{ \n }', 'an empty object with whitespace'],
  [`{"s":${'['.repeat(1001)}${']'.repeat(1001)}}`, 'an array nested 1001 deep into a String'],
  [`{"s":${'['.repeat(1002)}${']'.repeat(1002)}}`, '[D10] an array nested 1002 deep into a String'],
  [`{"s":${'['.repeat(20000)}${']'.repeat(20000)}}`, '[D10] an array nested 20000 deep into a String'],
  [`{"unknown":${'['.repeat(1002)}${']'.repeat(1002)},"s":"x"}`, 'an unknown field nested 1002 deep (refused by both)'],
  [`{"unknown":${'['.repeat(1001)}${']'.repeat(1001)},"s":"x"}`, 'an unknown field nested past input_format_json_max_depth'],
];

/** The full groups row; `extra` is appended after every column has been seen. */
const groupsRow = (extra: string): string => `{"group_type_index":1,"group_key":"acme","created_at":"2030-01-01 00:00:00","team_id":2,"group_properties":"{}"${extra}}`;

const GROUPS: ReadonlyArray<readonly [Piece, string]> = [
  [groupsRow(',"group_key":"again"'), '[D6] a duplicate field after every column was seen'],
  [groupsRow(',"_offset":7'), '[D6] a metadata column named after every column was seen'],
  [groupsRow(',"GROUP_KEY":"again"'), '[D1][D6] a duplicate differing in case after every column was seen'],
  [groupsRow(',"group_key":"\\ud800"'), '[D6] a duplicate holding a lone surrogate after every column was seen (refused by both)'],
  [groupsRow(',"x":1.5.5'), 'malformed JSON after every column was seen (refused by both)'],
  ['{"group_type_index":1,"group_key":"acme","group_key":"again","created_at":"2030-01-01 00:00:00","team_id":2,"group_properties":"{}"}', 'a duplicate field before every column was seen'],
  [groupsRow(''), 'a plain row'],
];

/** Whole messages for a table that keeps them in `_message String` (the inserter's default table shape). */
const WRAPPED: ReadonlyArray<readonly [Piece, string]> = [
  ['{"team_id":3,"event":"x"}', 'a plain message'],
  ['{ "team_id" : 3 ,\n "event" : "x" }', 'whitespace between tokens is kept'],
  ['{"team_id":3,"s":"\\uZZZZ","t":"\\ud83d\\ude00","u":"x\\udc00y"}', 'escapes are kept as written'],
  ['{"team_id":3,"s":"\\ud800"}', 'a lone high surrogate in the message'],
  [raw('{"team_id":3,"s":"', [0xff, 0xfe], '"}'), 'invalid UTF-8 in the message'],
  ['{"team_id":"3","x":1}', 'a team id in a string'],
  ['{"event":"no team"}', 'no team id'],
  ['{"team_id":3,"a":{"b":[1,2,{"c":null}]},"d":1.5e300,"e":-0}', 'nested values and numbers are kept as written'],
  [`{"team_id":3,"a":${'['.repeat(1000)}${']'.repeat(1000)}}`, 'a message nested 1001 deep'],
  [`{"team_id":3,"a":${'['.repeat(1001)}${']'.repeat(1001)}}`, '[D10] a message nested 1002 deep'],
  ['{"team_id":3,"team_id":4}', 'a repeated team id'],
];

/** The regression cases of a table with `_message String` and `team_id`. */
export function wrappedRegressions(topic: string): DiffCase[] {
  return WRAPPED.map(([input, what], i) => handCase(topic, BigInt(i + 1), input, what));
}

/** Digit strings of 5 to 25 digits (and negative ones) for each date-time column: seconds, ticks, saturation, overflow (D4). */
function digitStrings(): Array<readonly [Piece, string]> {
  const out: Array<readonly [Piece, string]> = [];
  for (let n = 5; n <= 25; n++) {
    const digits = '1234567890123456789012345'.slice(0, n);
    for (const column of ['dt', 'dt64_3', 'dt64_6', 'd']) out.push([`{"${column}":"${digits}","s":"${n} digits"}`, `[D4] ${n} digits in a string for ${column}`]);
    out.push([`{"dt64_3":${digits},"s":"${n} digits, unquoted"}`, `${n} digits unquoted for dt64_3`]);
  }
  out.push(['{"dt64_3":"9223372036854775807"}', '[D4] Int64 max ticks'], ['{"dt64_3":"9223372036854775808"}', '[D4] Int64 max + 1 ticks'], ['{"dt64_6":"0000000000000"}', '[D4] 13 zeros']);
  return out;
}

/** The regression cases of the all_types columns. */
export function allTypesRegressions(topic: string): DiffCase[] {
  const cases = [...ALL_TYPES, ...digitStrings()].map(([input, what], i) => handCase(topic, BigInt(i + 1), input, what));
  cases.push(
    handCase(topic, 900n, '{"s":"key"}', '[D7] a Kafka key that is not UTF-8', { key: raw([0xff, 0xfe], 'A') }),
    handCase(topic, 901n, '{"s":"header"}', 'Kafka headers that are not UTF-8', { headers: [[raw([0xc3]), raw('v', [0xff])]] }),
    handCase(topic, 902n, '{"s":"old"}', 'a Kafka timestamp beyond DateTime (2106)', { timestamp: 4_294_967_296_000n }),
    handCase(topic, 903n, '{"s":"zero"}', 'a Kafka timestamp of 0', { timestamp: 0n }),
  );
  return cases;
}

/** A table whose column names differ only in case, and one with a non-ASCII name (D1). */
export const CASE_DDL = 'CREATE TABLE x.cased (ab String, `AB` String, `Ab2` String, `été` String, _offset UInt64) ENGINE = Memory';

const CASED: ReadonlyArray<readonly [Piece, string]> = [
  ['{"aB":"x"}', '[D1] a key that matches two columns ignoring case: Ambiguous field'],
  ['{"AB":"x","ab":"y"}', '[D1] exact matches of two columns differing in case'],
  ['{"ab2":"x"}', '[D1] a key matching one column ignoring case'],
  ['{"AB2":"x","Ab2":"y"}', '[D1] the same column twice, once ignoring case'],
  ['{"éTé":"x"}', '[D1] ASCII case folded in a non-ASCII name'],
  ['{"ÉTÉ":"x"}', '[D1] non-ASCII case not folded: unknown'],
  ['{"\\u00e9T\\u00e9":"x"}', '[D1] an escaped key matched ignoring case'],
];

/** The regression cases of the table with names differing in case. */
export function casedRegressions(topic: string): DiffCase[] {
  return CASED.map(([input, what], i) => handCase(topic, BigInt(i + 1), input, what));
}

/** The regression cases of the groups table. */
export function groupsRegressions(topic: string): DiffCase[] {
  return GROUPS.map(([input, what], i) => handCase(topic, BigInt(i + 1), input, what));
}

/** A divergence the project has decided to accept (named by its finding); it is reported, not failed on. */
export interface AcceptedDifference {
  readonly finding: string;
  readonly matches: (d: Divergence) => boolean;
}

/**
 * D5 as a predicate: a date-time string ClickHouse reads past its closing quote (or a negative unix
 * time in a string), which JSONEachRow takes and the typed encoder refuses on purpose.
 */
export const d5ContextDependentDateTime: AcceptedDifference = {
  finding: 'D5',
  matches: (d) => d.kind === 'typed-rejects' && /read differently by ClickHouse depending on its read buffer|Cannot parse DateTime/.test(d.typed),
};

/**
 * The differences accepted (docs/design/typed-differential-findings.md): D5 only. Its forms are
 * malformed date-times that ClickHouse turns into a value read from the *following* field's bytes
 * when they are mid-row and refuses at a row's end; the typed path refuses them always, so such a row
 * is dead-lettered with its reason rather than stored with a value nobody sent. Every other
 * divergence fails its test.
 */
export const acceptedDifferences: readonly AcceptedDifference[] = [d5ContextDependentDateTime];
