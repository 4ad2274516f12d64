// Owns reading a ClickHouse type name as system.columns spells it (`Nullable(DateTime64(6, 'UTC'))`,
// `Enum8('full' = 0, 'a''b' = 1)`, `SimpleAggregateFunction(sum, Int64)`) into a small tree the
// column writers are built from, once per schema version.

/** One argument of a parametric type: a nested type (or a bare name such as `sum`), a number, a quoted string, or an enum entry. */
export type TypeArg =
  | { readonly kind: 'type'; readonly type: TypeNode }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'enum'; readonly name: string; readonly value: number };

export interface TypeNode {
  readonly name: string;
  readonly args: readonly TypeArg[];
}

export class TypeParseError extends Error {}

/** Parses a type name; throws TypeParseError naming the position when it cannot. */
export function parseType(text: string): TypeNode {
  const parser = new Parser(text);
  const node = parser.type();
  parser.space();
  if (parser.i !== text.length) throw new TypeParseError(`unexpected '${text.slice(parser.i, parser.i + 10)}' at ${parser.i} in ${text}`);
  return node;
}

/** The type name back as text (for messages). */
export function typeText(node: TypeNode): string {
  if (node.args.length === 0) return node.name;
  const args = node.args.map((a) => {
    switch (a.kind) {
      case 'type':
        return typeText(a.type);
      case 'number':
        return String(a.value);
      case 'string':
        return quote(a.value);
      case 'enum':
        return `${quote(a.name)} = ${a.value}`;
    }
  });
  return `${node.name}(${args.join(', ')})`;
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

class Parser {
  readonly text: string;
  i = 0;

  constructor(text: string) {
    this.text = text;
  }

  space(): void {
    while (this.i < this.text.length && /\s/.test(this.text[this.i] ?? '')) this.i++;
  }

  type(): TypeNode {
    this.space();
    const start = this.i;
    while (this.i < this.text.length && /[A-Za-z0-9_]/.test(this.text[this.i] ?? '')) this.i++;
    if (this.i === start) throw new TypeParseError(`expected a type name at ${start} in ${this.text}`);
    const name = this.text.slice(start, this.i);
    this.space();
    if (this.text[this.i] !== '(') return { name, args: [] };
    this.i++;
    const args: TypeArg[] = [];
    this.space();
    if (this.text[this.i] === ')') {
      this.i++;
      return { name, args };
    }
    for (;;) {
      args.push(this.arg());
      this.space();
      const c = this.text[this.i];
      this.i++;
      if (c === ')') return { name, args };
      if (c !== ',') throw new TypeParseError(`expected ',' or ')' at ${this.i - 1} in ${this.text}`);
    }
  }

  arg(): TypeArg {
    this.space();
    const c = this.text[this.i];
    if (c === "'") {
      const value = this.quoted();
      this.space();
      if (this.text[this.i] === '=') {
        this.i++;
        this.space();
        return { kind: 'enum', name: value, value: this.number() };
      }
      return { kind: 'string', value };
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return { kind: 'number', value: this.number() };
    return { kind: 'type', type: this.type() };
  }

  number(): number {
    const start = this.i;
    if (this.text[this.i] === '-') this.i++;
    while (this.i < this.text.length && /[0-9]/.test(this.text[this.i] ?? '')) this.i++;
    const value = Number(this.text.slice(start, this.i));
    if (this.i === start || !Number.isSafeInteger(value)) throw new TypeParseError(`expected a number at ${start} in ${this.text}`);
    return value;
  }

  quoted(): string {
    // 'it''s' and 'it\'s' both spell it's.
    let out = '';
    this.i++;
    for (;;) {
      const c = this.text[this.i];
      if (c === undefined) throw new TypeParseError(`unterminated string in ${this.text}`);
      this.i++;
      if (c === '\\') {
        const next = this.text[this.i];
        if (next === undefined) throw new TypeParseError(`unterminated string in ${this.text}`);
        out += next;
        this.i++;
      } else if (c === "'") {
        if (this.text[this.i] === "'") {
          out += "'";
          this.i++;
        } else return out;
      } else out += c;
    }
  }
}
