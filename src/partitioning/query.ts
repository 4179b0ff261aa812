/**
 * The jq that Firehose's MetadataExtraction queries are written in, compiled to plain functions:
 * `{customer: .customer_id, region: .geo.region}` — an object of paths, with `.a.b`, `.["a b"]`,
 * `.a[0]`, `{name}` for `{name: .name}`, and pipes into `tostring`, `ascii_downcase`,
 * `ascii_upcase` or `strftime("%Y-%m-%d")` (epoch seconds, as jq). Full jq through WebAssembly
 * runs ~800 evaluations/s (NOTES.md); this runs at JSON.parse speed. Anything else is rejected at
 * configuration time with the supported forms named.
 */
import { RecordScanner } from '../conversion/record-reader.js';

export type PartitionKeys = Record<string, string>;

export interface CompiledQuery {
  readonly source: string;
  readonly keys: readonly string[];
  /** The keys of one parsed JSON record; throws QueryError naming the key that has no value. */
  evaluate(document: unknown): PartitionKeys;
  /**
   * The keys read straight from a record's bytes, for a query of field paths: undefined when the
   * record must be parsed and evaluated instead (a key without a plain string value, an escape in
   * one, a duplicate key, JSON that is not well-formed — whose error, then, is the parse's).
   */
  fromBytes(data: Buffer): PartitionKeys | undefined;
}

export class QueryError extends Error {}

type Step = (value: unknown) => unknown;
/** A key, its steps, the filters at their end, and the field names of its path (undefined when the path indexes an array). */
type Entry = [string, Step[], Step[], string[] | undefined];

/**
 * The Parquet conversion's record scanner, asked for each key's path as a string column: a query
 * of field paths (no array index, no name the scanner cannot match as bytes) reads a record
 * without parsing it. jq looks fields up exactly, so keys match case-sensitively.
 */
function pathReader(entries: readonly Entry[]): RecordScanner | undefined {
  if (!entries.every(([, , , names]) => names && names.length > 0 && names.every((n) => !n.includes('.')))) return undefined;
  const reader = new RecordScanner(
    entries.map((_, k) => ({ name: `key${k}`, type: { kind: 'string' }, nullable: true })),
    { caseInsensitive: false, columnToJsonKeyMappings: Object.fromEntries(entries.map(([, , , names], k) => [`key${k}`, names!.join('.')])), convertDotsInJsonKeysToUnderscores: false },
  );
  return reader.reads ? reader : undefined;
}

export function compileQuery(source: string): CompiledQuery {
  const parser = new Parser(source);
  const entries = parser.object();
  parser.end();
  const keys = entries.map(([key]) => key);
  if (new Set(keys).size !== keys.length) throw new QueryError(`${source}: a key appears twice`);
  const reader = pathReader(entries);
  return {
    source,
    keys,
    fromBytes(data) {
      if (!reader?.scan(data, 0, data.length)) return undefined;
      const out: PartitionKeys = {};
      let ok = true;
      for (let k = 0; k < entries.length && ok; k++) {
        let value: unknown = reader.stringOf(k);
        for (const filter of entries[k]![2]) if (value !== undefined) value = filter(value);
        if (value === null || value === undefined || typeof value === 'object') ok = false;
        else out[entries[k]![0]] = String(value);
      }
      reader.forget();
      return ok ? out : undefined;
    },
    evaluate(document) {
      const out: PartitionKeys = {};
      for (const [key, steps] of entries) {
        let value: unknown = document;
        for (const step of steps) value = step(value);
        if (value === null || value === undefined) throw new QueryError(`partition key ${JSON.stringify(key)} is null or missing`);
        if (typeof value === 'object') throw new QueryError(`partition key ${JSON.stringify(key)} is an ${Array.isArray(value) ? 'array' : 'object'}, not a value`);
        out[key] = String(value);
      }
      return out;
    },
  };
}

const field = (name: string): Step => (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined;
const element = (index: number): Step => (value) => (Array.isArray(value) ? value.at(index) : undefined);

const FILTERS: Record<string, Step> = {
  tostring: (v) => (v === null || v === undefined ? v : typeof v === 'string' ? v : JSON.stringify(v)),
  ascii_downcase: (v) => (typeof v === 'string' ? v.toLowerCase() : v),
  ascii_upcase: (v) => (typeof v === 'string' ? v.toUpperCase() : v),
};

class Parser {
  private at = 0;
  constructor(private readonly text: string) {}

  object(): Entry[] {
    this.expect('{');
    const entries: Entry[] = [];
    do {
      this.space();
      const key = this.peek() === '"' ? this.string() : this.identifier();
      this.space();
      if (this.peek() === ':') {
        this.at++;
        entries.push([key, ...this.value()]);
      } else {
        entries.push([key, [field(key)], [], [key]]);
      }
      this.space();
    } while (this.peek() === ',' && ++this.at);
    this.expect('}');
    return entries;
  }

  end(): void {
    this.space();
    if (this.at < this.text.length) this.fail('unexpected text');
  }

  /** The value's steps, the filters among them (after its path), and its path's names (undefined with an index in it). */
  private value(): [Step[], Step[], string[] | undefined] {
    this.space();
    const [steps, names] = this.path();
    const filters: Step[] = [];
    for (;;) {
      this.space();
      if (this.peek() !== '|') {
        steps.push(...filters);
        return [steps, filters, names];
      }
      this.at++;
      this.space();
      const name = this.identifier();
      if (name === 'strftime') {
        this.space();
        this.expect('(');
        this.space();
        const format = this.string();
        this.space();
        this.expect(')');
        filters.push(strftime(format));
      } else if (FILTERS[name]) {
        filters.push(FILTERS[name]!);
      } else {
        this.fail(`filter ${JSON.stringify(name)} is not supported (tostring, ascii_downcase, ascii_upcase, strftime("…"))`);
      }
    }
  }

  private path(): [Step[], string[] | undefined] {
    this.expect('.');
    const steps: Step[] = [];
    let names: string[] | undefined = [];
    const name = (n: string) => {
      steps.push(field(n));
      names?.push(n);
    };
    if (/[A-Za-z_]/.test(this.peek())) name(this.identifier());
    for (;;) {
      const c = this.peek();
      if (c === '.' && /[A-Za-z_]/.test(this.text[this.at + 1] ?? '')) {
        this.at++;
        name(this.identifier());
      } else if (c === '[') {
        this.at++;
        this.space();
        if (this.peek() === '"') name(this.string());
        else {
          steps.push(element(this.integer()));
          names = undefined;
        }
        this.space();
        this.expect(']');
      } else if (c === '.' && this.text[this.at + 1] === '[') {
        this.at++;
      } else {
        return [steps, names];
      }
    }
  }

  private identifier(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.at));
    if (!match) this.fail('expected a name');
    this.at += match![0].length;
    return match![0];
  }

  private string(): string {
    const match = /^"(?:[^"\\]|\\.)*"/.exec(this.text.slice(this.at));
    if (!match) this.fail('expected a "string"');
    this.at += match![0].length;
    return JSON.parse(match![0]) as string;
  }

  private integer(): number {
    const match = /^-?\d+/.exec(this.text.slice(this.at));
    if (!match) this.fail('expected an index or a "key"');
    this.at += match![0].length;
    return Number(match![0]);
  }

  private space(): void {
    while (/\s/.test(this.peek())) this.at++;
  }

  private peek(): string {
    return this.text[this.at] ?? '';
  }

  private expect(c: string): void {
    if (this.peek() !== c) this.fail(`expected "${c}"`);
    this.at++;
  }

  private fail(what: string): never {
    throw new QueryError(
      `${this.text}: ${what} at position ${this.at} — supported: {key: .path, …} with .a.b, .["k"], .a[0], {key} and | tostring, ascii_downcase, ascii_upcase, strftime("…")`,
    );
  }
}

/** jq's strftime on epoch seconds, UTC: %Y %m %d %H %M %S %j %y %e %%. */
function strftime(format: string): Step {
  return (value) => {
    const seconds = typeof value === 'string' ? Number(value) : value;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return undefined;
    const d = new Date(seconds * 1000);
    const p = (n: number, w = 2) => String(n).padStart(w, '0');
    return format.replace(/%([YmdHMSjye%])/g, (_, c: string) => {
      switch (c) {
        case 'Y': return String(d.getUTCFullYear());
        case 'y': return p(d.getUTCFullYear() % 100);
        case 'm': return p(d.getUTCMonth() + 1);
        case 'd': return p(d.getUTCDate());
        case 'e': return String(d.getUTCDate()).padStart(2, ' ');
        case 'H': return p(d.getUTCHours());
        case 'M': return p(d.getUTCMinutes());
        case 'S': return p(d.getUTCSeconds());
        case 'j': return p(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3);
        default: return '%';
      }
    });
  };
}
