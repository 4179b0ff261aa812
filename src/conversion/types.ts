/**
 * Column types in the Hive syntax Glue tables use (`string`, `int`, `bigint`, `double`, `float`,
 * `boolean`, `timestamp`, `date`, `decimal(p,s)`, `binary`, `array<T>`, `struct<a:T,…>`,
 * `map<K,V>`), their Parquet schema, and the OpenX JSON SerDe's coercions from JSON values.
 * Shared by configuration validation (main thread) and the conversion worker.
 */
export type ColumnType =
  | { kind: Primitive }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'array'; element: ColumnType }
  | { kind: 'struct'; fields: Array<{ name: string; type: ColumnType }> }
  | { kind: 'map'; key: ColumnType; value: ColumnType };

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
}

export class TypeError_ extends Error {}

type Primitive = 'string' | 'int' | 'bigint' | 'double' | 'float' | 'boolean' | 'timestamp' | 'date' | 'binary';

/** The Parquet schema element of each primitive column type. */
const PRIMITIVE_ELEMENTS: Record<Primitive, Record<string, unknown>> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  binary: { type: 'BYTE_ARRAY' },
  int: { type: 'INT32' },
  bigint: { type: 'INT64' },
  double: { type: 'DOUBLE' },
  float: { type: 'FLOAT' },
  boolean: { type: 'BOOLEAN' },
  timestamp: { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } },
  date: { type: 'INT32', converted_type: 'DATE' },
};
const PRIMITIVES = new Set(Object.keys(PRIMITIVE_ELEMENTS));
const ALIASES: Record<string, string> = { integer: 'int', long: 'bigint', varchar: 'string', char: 'string', tinyint: 'int', smallint: 'int' };

export function parseType(text: string): ColumnType {
  let at = 0;
  const fail = (what: string): never => {
    throw new TypeError_(`${JSON.stringify(text)}: ${what} at position ${at} (types: string int bigint double float boolean timestamp date decimal(p,s) binary array<T> struct<name:T,…> map<K,V>)`);
  };
  const space = () => {
    while (text[at] === ' ') at++;
  };
  const word = () => {
    space();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(at));
    if (!m) fail('expected a name');
    at += m![0].length;
    return m![0];
  };
  const expect = (c: string) => {
    space();
    if (text[at] !== c) fail(`expected "${c}"`);
    at++;
  };
  const type = (): ColumnType => {
    const raw = word().toLowerCase();
    const name = ALIASES[raw] ?? raw;
    if (PRIMITIVES.has(name)) {
      if ((raw === 'varchar' || raw === 'char') && text[at] === '(') {
        while (at < text.length && text[at] !== ')') at++;
        at++;
      }
      return { kind: name as 'string' };
    }
    switch (name) {
      case 'decimal': {
        space();
        if (text[at] !== '(') return { kind: 'decimal', precision: 10, scale: 0 };
        expect('(');
        space();
        const p = /^\d+/.exec(text.slice(at));
        if (!p) fail('expected a precision');
        at += p![0].length;
        let scale = 0;
        space();
        if (text[at] === ',') {
          at++;
          space();
          const s = /^\d+/.exec(text.slice(at));
          if (!s) fail('expected a scale');
          at += s![0].length;
          scale = Number(s![0]);
        }
        expect(')');
        const precision = Number(p![0]);
        if (precision < 1 || precision > 38 || scale > precision) fail(`decimal(${precision},${scale}) needs 1 ≤ precision ≤ 38 and scale ≤ precision`);
        return { kind: 'decimal', precision, scale };
      }
      case 'array': {
        expect('<');
        const element = type();
        expect('>');
        return { kind: 'array', element };
      }
      case 'map': {
        expect('<');
        const key = type();
        expect(',');
        const value = type();
        expect('>');
        if (key.kind === 'array' || key.kind === 'struct' || key.kind === 'map') fail('a map key must be a primitive type');
        return { kind: 'map', key, value };
      }
      case 'struct': {
        expect('<');
        const fields: Array<{ name: string; type: ColumnType }> = [];
        do {
          const fieldName = word();
          expect(':');
          fields.push({ name: fieldName, type: type() });
          space();
        } while (text[at] === ',' && ++at);
        expect('>');
        return { kind: 'struct', fields };
      }
      default:
        return fail(`unknown type ${JSON.stringify(raw)}`);
    }
  };
  const result = type();
  space();
  if (at < text.length) fail('unexpected text');
  return result;
}

/** hyparquet-writer's flattened Parquet schema (SchemaElement[]) for the columns. */
export function parquetSchema(columns: readonly Column[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [{ name: 'root', num_children: columns.length }];
  const add = (name: string, type: ColumnType, repetition: 'OPTIONAL' | 'REQUIRED') => {
    if (type.kind in PRIMITIVE_ELEMENTS) {
      out.push({ name, ...PRIMITIVE_ELEMENTS[type.kind as Primitive], repetition_type: repetition });
      return;
    }
    switch (type.kind) {
      case 'decimal':
        out.push({ name, type: 'FIXED_LEN_BYTE_ARRAY', type_length: decimalBytes(type.precision), converted_type: 'DECIMAL', precision: type.precision, scale: type.scale, repetition_type: repetition });
        break;
      case 'array':
        out.push({ name, converted_type: 'LIST', num_children: 1, repetition_type: repetition });
        out.push({ name: 'list', repetition_type: 'REPEATED', num_children: 1 });
        add('element', type.element, 'OPTIONAL');
        break;
      case 'struct':
        out.push({ name, num_children: type.fields.length, repetition_type: repetition });
        for (const f of type.fields) add(f.name, f.type, 'OPTIONAL');
        break;
      case 'map':
        out.push({ name, converted_type: 'MAP', num_children: 1, repetition_type: repetition });
        out.push({ name: 'key_value', repetition_type: 'REPEATED', num_children: 2 });
        add('key', type.key, 'REQUIRED');
        add('value', type.value, 'OPTIONAL');
        break;
    }
  };
  for (const c of columns) add(c.name, c.type, c.nullable ? 'OPTIONAL' : 'REQUIRED');
  return out;
}

function decimalBytes(precision: number): number {
  // Smallest two's-complement width holding 10^precision - 1.
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) <= 10n ** BigInt(precision)) bytes++;
  return bytes;
}

export class CoercionError extends Error {}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A JSON value as the column's type, the way the OpenX JSON SerDe reads it: numbers in strings
 * for numeric columns, ISO-8601 or epoch milliseconds for timestamps, "true"/"false" for
 * booleans, any value as text for strings. null stays null; anything else is a CoercionError that
 * names the path.
 */
export function coerce(value: unknown, type: ColumnType, path: string): unknown {
  if (value === null || value === undefined) return null;
  const bad = (why = `cannot be read as ${describe(type)}`): never => {
    throw new CoercionError(`${path}: ${JSON.stringify(value)?.slice(0, 80)} ${why}`);
  };
  switch (type.kind) {
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'binary':
      return typeof value === 'string' ? new TextEncoder().encode(value) : bad();
    case 'int': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isInteger(n)) return bad();
      if (n < INT32_MIN || n > INT32_MAX) return bad('is out of range for int');
      return n;
    }
    case 'bigint': {
      let n: bigint;
      if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
      else if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) n = BigInt(value.trim());
      else return bad();
      if (n < INT64_MIN || n > INT64_MAX) return bad('is out of range for bigint');
      return n;
    }
    case 'double':
    case 'float': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      return Number.isNaN(n) ? bad() : n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return bad();
    case 'timestamp': {
      const ms = typeof value === 'number' ? value : typeof value === 'string' ? (/^-?\d+$/.test(value) ? Number(value) : Date.parse(value)) : NaN;
      // A Date holds ±8.64e15 ms; past that it is Invalid Date, which no column can hold.
      return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(Math.trunc(ms)) : bad();
    }
    case 'date': {
      if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
        const d = new Date(`${value}T00:00:00Z`);
        return Number.isNaN(d.getTime()) ? bad() : d;
      }
      return bad('is not a yyyy-MM-dd date');
    }
    case 'decimal':
      return decimal(value, type.precision, type.scale, bad);
    case 'array':
      if (!Array.isArray(value)) return bad('is not an array');
      return value.map((v, i) => coerce(v, type.element, `${path}[${i}]`));
    case 'struct': {
      if (typeof value !== 'object' || Array.isArray(value)) return bad('is not an object');
      const out: Record<string, unknown> = {};
      for (const f of type.fields) out[f.name] = coerce(lookup(value as Record<string, unknown>, f.name), f.type, `${path}.${f.name}`);
      return out;
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) return bad('is not an object');
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out[k] = coerce(v, type.value, `${path}.${k}`);
      }
      return out;
    }
  }
}

/** Field lookup as OpenX does by default: exact name first, then case-insensitively. */
export function lookup(object: Record<string, unknown>, name: string): unknown {
  if (name in object) return object[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(object)) if (key.toLowerCase() === lower) return object[key];
  return undefined;
}

/** The unscaled value of a decimal, exactly (from the JSON text, not through float64), rounded half up. */
function decimal(value: unknown, precision: number, scale: number, bad: (why?: string) => never): bigint {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : typeof value === 'string' ? value.trim() : '';
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return bad();
  const negative = m[1] === '-';
  let digits = (m[2] ?? '') + (m[3] ?? '');
  const exponent = -(m[3] ?? '').length + Number(m[4] ?? 0);
  // Bring to the column's scale: value = digits × 10^exponent.
  let unscaled: bigint;
  const shift = exponent + scale;
  if (shift >= 0) unscaled = BigInt(digits || '0') * 10n ** BigInt(shift);
  else {
    const cut = -shift;
    digits = digits.padStart(cut + 1, '0');
    const kept = BigInt(digits.slice(0, digits.length - cut) || '0');
    const roundUp = Number(digits[digits.length - cut]) >= 5;
    unscaled = roundUp ? kept + 1n : kept;
  }
  if (unscaled >= 10n ** BigInt(precision)) return bad(`does not fit decimal(${precision},${scale})`);
  return negative ? -unscaled : unscaled;
}

function describe(type: ColumnType): string {
  switch (type.kind) {
    case 'decimal':
      return `decimal(${type.precision},${type.scale})`;
    case 'array':
      return `array<${describe(type.element)}>`;
    case 'map':
      return `map<${describe(type.key)},${describe(type.value)}>`;
    case 'struct':
      return `struct<${type.fields.map((f) => `${f.name}:${describe(f.type)}`).join(',')}>`;
    default:
      return type.kind;
  }
}

export interface DeserializerOptions {
  /** OpenX: match JSON keys to columns ignoring case (default true). */
  readonly caseInsensitive: boolean;
  /** OpenX: column name → JSON key (dots reach into nested objects). */
  readonly columnToJsonKeyMappings: Readonly<Record<string, string>>;
  /** OpenX: read JSON key "a.b" as column a_b. */
  readonly convertDotsInJsonKeysToUnderscores: boolean;
}

/** One JSON record as a row of the columns, or a CoercionError naming what is wrong and where. */
export function rowOf(document: unknown, columns: readonly Column[], options: DeserializerOptions): unknown[] {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw new CoercionError('the record is not a JSON object');
  }
  let object = document as Record<string, unknown>;
  if (options.convertDotsInJsonKeysToUnderscores) {
    object = Object.fromEntries(Object.entries(object).map(([k, v]) => [k.replaceAll('.', '_'), v]));
  }
  return columns.map((column) => {
    const mapped = options.columnToJsonKeyMappings[column.name];
    let value: unknown;
    if (mapped !== undefined) {
      value = object;
      for (const part of mapped.split('.')) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
    } else {
      value = options.caseInsensitive ? lookup(object, column.name) : object[column.name];
    }
    const coerced = coerce(value, column.type, column.name);
    if (coerced === null && !column.nullable) throw new CoercionError(`${column.name}: is required (not nullable) but the record has no value`);
    return coerced;
  });
}

/** What a conversion thread needs to write one Parquet file: the columns and the writer's settings. */
export interface SessionSpec {
  readonly columns: readonly Column[];
  readonly deserializer: DeserializerOptions;
  readonly compression: 'SNAPPY' | 'GZIP' | 'UNCOMPRESSED';
  readonly pageSizeBytes: number;
  readonly rowGroupBytes: number;
  readonly enableDictionaryCompression: boolean;
}


const RUN = 16;

/**
 * Whether the text holds a run of 16 or more ASCII digits, looking at one character in 16: any
 * such run covers one of the positions 15, 31, 47, …, so only a digit there is followed to its
 * run's ends. Most records have none and are read in a sixteenth of the steps a regular
 * expression takes (`/\d{16}/` was 4–6 % of a conversion thread).
 */
export function hasSixteenDigits(text: string): boolean {
  for (let i = RUN - 1; i < text.length; i += RUN) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let start = i;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    let end = i + 1;
    while (end < text.length && isDigit(text.charCodeAt(end))) end++;
    if (end - start >= RUN) return true;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * JSON.parse, except that number literals with more significant digits than a float64 keeps (16
 * or more) come back as their exact text, as a string: bigint and decimal columns then take the
 * digits as written (9007199254740993 stays …993), and every other column reads a number from a
 * string as it already does. Node 20's JSON.parse gives a reviver no source text, so the literals
 * are quoted before parsing; text without a run of 16 digits is parsed as it is.
 */
export function parseJsonExact(text: string): unknown {
  if (!hasSixteenDigits(text)) return JSON.parse(text);
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Past the string, escapes included.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    let j = i + 1;
    let digits = c === 0x2d ? 0 : 1;
    let significant = c >= 0x31 && c <= 0x39 ? 1 : 0;
    for (; j < text.length; j++) {
      const d = text.charCodeAt(j);
      if (d >= 0x30 && d <= 0x39) {
        digits++;
        if (significant > 0 || d !== 0x30) significant++;
      } else if (d === 0x65 || d === 0x45) {
        // The exponent's digits are not significant ones.
        for (j++; j < text.length && /[+\-0-9]/.test(text[j]!); j++);
        break;
      } else if (d !== 0x2e) break;
    }
    if (significant >= 16 && digits > 0) {
      out += `${text.slice(last, i)}"${text.slice(i, j)}"`;
      last = j;
    }
    i = j - 1;
  }
  return JSON.parse(out + text.slice(last));
}
