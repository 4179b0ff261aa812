/**
 * Reads JSON records straight from their UTF-8 bytes into a row group's column stores: one pass
 * over each record's bytes, keys matched against the columns as bytes, string values kept as the
 * record's own bytes, numbers read from their digits. No record is decoded to a string, built as
 * objects or encoded back. A record it does not read the way the general path would (an escape in
 * a value it keeps, a number written as text, a duplicate key, anything malformed) is declined as
 * a whole, before any column holds a byte of it, and goes the general way (`JSON.parse` and
 * `rowOf`), whose rows are kept in the same stores — so both ways write the same file, and a
 * malformed record is still named by the general path's error.
 *
 * Array, map and decimal columns (and structs holding them) are not kept here: the reader hands
 * their values, decoded and coerced, to hyparquet-writer.
 *
 * `RecordScanner` reads one record into one row's values; `RowGroupColumns` keeps those rows in a
 * row group's column stores. Dynamic partitioning's field-path queries use the scanner alone.
 */
import { isUtf8 } from 'node:buffer';
import { BytesColumn, NumberColumn, type LeafColumn, type LeafKind } from './leaf-column.js';
import { coerce, parseJsonExact, type Column, type ColumnType, type DeserializerOptions, type SessionSpec } from './types.js';

const LEAF_KINDS: Partial<Record<ColumnType['kind'], LeafKind>> = {
  string: 'bytes', binary: 'bytes', int: 'int32', date: 'int32', bigint: 'int64', timestamp: 'int64', double: 'double', float: 'float', boolean: 'boolean',
};
const DAY_MS = 86_400_000;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Powers of ten a float64 holds exactly: m × 10^e with m < 2^53 is then rounded once, correctly. */
const POW10 = Array.from({ length: 23 }, (_, e) => 10 ** e);
/** Deeper than any log record; past it a record goes the general way. */
const MAX_DEPTH = 256;
const encoder = new TextEncoder();
const EMPTY = Buffer.alloc(0);

/** Whether the conversion keeps this type's values in its own column stores. */
export function keptAsLeaves(type: ColumnType): boolean {
  return type.kind === 'struct' ? type.fields.every((f) => keptAsLeaves(f.type)) : type.kind in LEAF_KINDS;
}

/** A column, or a field of a struct column, kept in the stores. */
interface Field {
  readonly id: number;
  readonly name: string;
  /** The names from the column down to this field. */
  readonly names: readonly string[];
  /** For errors and for `coerce`: `http.status`. */
  readonly path: string;
  readonly type: ColumnType;
  /** 1 when the field is OPTIONAL: present, it adds one to its leaves' definition levels. */
  readonly optional: number;
  /** How a primitive field's values are kept (undefined for a struct). */
  readonly kind: LeafKind | undefined;
  /** A leaf's definition level when it has a value. */
  readonly level: number;
  readonly children: Field[];
  /** For a leaf: the fields from its column down to itself. */
  readonly chain: number[];
}

/** A column as the scanner reads it: into its fields, or (array, map, decimal) as one decoded value. */
interface ScannedColumn {
  readonly column: Column;
  readonly field: Field | undefined;
}

/** A column's place in the row group: kept in leaves, or values for hyparquet-writer. */
export type TopColumn =
  | { readonly column: Column; readonly field: Field; readonly leaves: LeafColumn[]; readonly values?: undefined }
  | { readonly column: Column; readonly field?: undefined; readonly leaves?: undefined; readonly values: unknown[] };

type Target =
  | { readonly kind: 'field'; readonly slot: number; readonly field: Field; readonly node: KeyNode | undefined }
  | { readonly kind: 'path'; readonly slot: number; readonly node: KeyNode }
  | { readonly kind: 'other'; readonly slot: number; readonly top: number };

interface KeyEntry {
  readonly name: string;
  readonly key: Uint8Array;
  /** Matched ignoring case too (as OpenX does by default), or exactly only. */
  readonly lower: string | undefined;
  readonly lowerBytes: Uint8Array | undefined;
  target: Target;
}
interface KeyNode {
  readonly entries: KeyEntry[];
  readonly caseInsensitive: boolean;
}

/** Names the reader cannot match as bytes the way a JS property lookup does. */
function plainName(name: string): boolean {
  return /^[\x20-\x7e]+$/.test(name) && !/^\d+$/.test(name) && !(name in Object.prototype) && !name.includes('"') && !name.includes('\\');
}

/**
 * Reads one record at a time from its bytes into the values of one row (`present`, `numbers`,
 * `bigints`, the byte ranges of strings, `others`), or takes a row the general path decoded.
 * What keeps the rows is up to its user: a row group's column stores, or a partitioning query's keys.
 */
export class RecordScanner {
  readonly columns: ScannedColumn[] = [];
  readonly fields: Field[] = [];
  /** The primitive fields, in schema order. */
  readonly leafFields: Field[] = [];
  /** Undefined when the reader cannot read these columns from bytes (every record goes the general way). */
  private readonly root: KeyNode | undefined;
  private slots = 0;

  // One record's values, by field id (`others` by column), kept until the whole record is read.
  readonly present: Uint8Array;
  readonly numbers: Float64Array;
  readonly bigints: bigint[];
  readonly sources: Uint8Array[];
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly others: unknown[];
  /** Which keys the record has had: a second match for one sends it the general way. */
  private readonly filled: Uint8Array;

  // The record being read.
  private p: Uint8Array = EMPTY;
  private text: Buffer = EMPTY;
  private i = 0;
  private end = 0;
  private high = false;
  /** Of the last number read: its significant digits, and whether it had no fraction or exponent. */
  private significant = 0;
  private integral = true;

  constructor(columns: readonly Column[], deserializer: DeserializerOptions) {
    const field = (names: string[], type: ColumnType, optional: number, chain: number[], depth: number): Field => {
      const id = this.fields.length;
      const here = [...chain, id];
      const kind = LEAF_KINDS[type.kind];
      const level = depth + optional;
      const made: Field = { id, name: names.at(-1)!, names, path: names.join('.'), type, optional, kind, level, children: [], chain: here };
      this.fields.push(made);
      if (kind) this.leafFields.push(made);
      else if (type.kind === 'struct') {
        for (const f of type.fields) made.children.push(field([...names, f.name], f.type, 1, here, level));
      }
      return made;
    };
    for (const column of columns) {
      this.columns.push({ column, field: keptAsLeaves(column.type) ? field([column.name], column.type, column.nullable ? 1 : 0, [], 0) : undefined });
    }
    this.root = this.compile(deserializer);
    const n = this.fields.length;
    this.present = new Uint8Array(n);
    this.numbers = new Float64Array(n);
    this.bigints = new Array<bigint>(n).fill(0n);
    this.sources = new Array<Uint8Array>(n).fill(EMPTY);
    this.starts = new Int32Array(n);
    this.ends = new Int32Array(n);
    this.others = new Array<unknown>(columns.length).fill(null);
    this.filled = new Uint8Array(Math.max(1, this.slots));
  }

  /** The keys the reader looks for, as a tree of objects; undefined when it cannot match them as bytes. */
  private compile(deserializer: DeserializerOptions): KeyNode | undefined {
    const { caseInsensitive, columnToJsonKeyMappings, convertDotsInJsonKeysToUnderscores } = deserializer;
    if (convertDotsInJsonKeysToUnderscores) return undefined;
    const node = (insensitive: boolean): KeyNode => ({ entries: [], caseInsensitive: insensitive });
    const add = (into: KeyNode, key: string, insensitive: boolean, target: Target): boolean => {
      const lower = key.toLowerCase();
      // Two keys one record could match both ways: leave it to the general path.
      if (into.entries.some((e) => e.name.toLowerCase() === lower)) return false;
      into.entries.push({ name: key, key: encoder.encode(key), lower: insensitive ? lower : undefined, lowerBytes: insensitive ? encoder.encode(lower) : undefined, target });
      return true;
    };
    const structNode = (f: Field): KeyNode | undefined => {
      const n = node(true);
      for (const child of f.children) {
        if (!plainName(child.name)) return undefined;
        const inner = child.children.length > 0 ? structNode(child) : undefined;
        if (child.children.length > 0 && !inner) return undefined;
        if (!add(n, child.name, true, { kind: 'field', slot: this.slots++, field: child, node: inner })) return undefined;
      }
      return n;
    };
    const root = node(caseInsensitive);
    for (const [t, top] of this.columns.entries()) {
      const name = top.column.name;
      const inner = top.field && top.field.children.length > 0 ? structNode(top.field) : undefined;
      if (top.field && top.field.children.length > 0 && !inner) return undefined;
      const target: Target = top.field ? { kind: 'field', slot: this.slots++, field: top.field, node: inner } : { kind: 'other', slot: this.slots++, top: t };
      const mapped = columnToJsonKeyMappings[name];
      if (mapped === undefined) {
        if (!plainName(name) || !add(root, name, caseInsensitive, target)) return undefined;
        continue;
      }
      // A mapped column is found by its path, exactly, and not by its own name.
      const parts = mapped.split('.');
      if (!parts.every(plainName)) return undefined;
      let at = root;
      for (const part of parts.slice(0, -1)) {
        const existing = at.entries.find((e) => e.name === part);
        if (existing) {
          if (existing.target.kind !== 'path') return undefined;
          at = existing.target.node;
          continue;
        }
        const next = node(false);
        if (!add(at, part, false, { kind: 'path', slot: this.slots++, node: next })) return undefined;
        at = next;
      }
      if (!add(at, parts.at(-1)!, false, target)) return undefined;
    }
    return root;
  }

  /** Whether records can be read from their bytes at all (not with every deserializer setting or column name). */
  get reads(): boolean {
    return this.root !== undefined;
  }

  /**
   * Reads record [start, end) of `payload` into the row's values; false when the record must go
   * the general way (what was read of it is then no row's).
   */
  scan(payload: Uint8Array, start: number, end: number): boolean {
    if (!this.root) return false;
    if (payload !== this.p) {
      this.p = payload;
      this.text = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    }
    this.reset();
    try {
      if (!this.scanWhole(this.root, payload, start, end)) return false;
    } catch {
      // Whatever went wrong, the general path reads the record (and names what is wrong with it).
      return false;
    }
    // A record without a value for a column that must have one: the general path names it.
    for (let t = 0; t < this.columns.length; t++) {
      const { column, field } = this.columns[t]!;
      if (!column.nullable && (field ? this.present[field.id] === 0 : this.others[t] === null)) return false;
    }
    return true;
  }

  /** Takes a row the general path decoded and coerced (`rowOf`'s values, one per column). */
  assign(row: readonly unknown[]): void {
    this.reset();
    for (const [t, { field }] of this.columns.entries()) {
      if (field) this.set(field, row[t]);
      else this.others[t] = row[t];
    }
  }

  /** Lets go of the last record scanned (a long-lived scanner would keep its bytes alive). */
  forget(): void {
    this.p = EMPTY;
    this.text = EMPTY;
    this.sources.fill(EMPTY);
  }

  /** After `scan`: string column `t`'s value in the record, or undefined when it has none. */
  stringOf(t: number): string | undefined {
    const f = this.columns[t]?.field;
    if (!f || f.type.kind !== 'string' || this.present[f.id] === 0) return undefined;
    return this.text.toString('utf8', this.starts[f.id], this.ends[f.id]);
  }

  private scanWhole(root: KeyNode, payload: Uint8Array, start: number, end: number): boolean {
    this.i = start;
    this.end = end;
    this.high = false;
    this.ws();
    if (this.i >= end || payload[this.i] !== 0x7b) return false;
    if (!this.object(root, 0)) return false;
    this.ws();
    if (this.i !== end) return false;
    return !this.high || isUtf8(payload.subarray(start, end));
  }

  private set(f: Field, value: unknown): void {
    if (value === null || value === undefined) return;
    const id = f.id;
    this.present[id] = 1;
    if (!f.kind) {
      for (const child of f.children) this.set(child, (value as Record<string, unknown>)[child.name]);
      return;
    }
    switch (f.type.kind) {
      case 'string': {
        const bytes = encoder.encode(value as string);
        [this.sources[id], this.starts[id], this.ends[id]] = [bytes, 0, bytes.length];
        break;
      }
      case 'binary':
        [this.sources[id], this.starts[id], this.ends[id]] = [value as Uint8Array, 0, (value as Uint8Array).length];
        break;
      case 'bigint':
        this.bigints[id] = value as bigint;
        break;
      case 'timestamp':
        this.bigints[id] = BigInt((value as Date).getTime());
        break;
      case 'date':
        this.numbers[id] = Math.floor((value as Date).getTime() / DAY_MS);
        break;
      case 'boolean':
        this.numbers[id] = value ? 1 : 0;
        break;
      default:
        this.numbers[id] = value as number;
    }
  }

  private reset(): void {
    this.present.fill(0);
    this.filled.fill(0);
    for (let t = 0; t < this.others.length; t++) this.others[t] = null;
  }

  // ---- the byte reader: each method starts at `this.i` and leaves it past what it read ----

  private ws(): void {
    const p = this.p;
    let i = this.i;
    while (i < this.end) {
      const c = p[i]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    this.i = i;
  }

  /** An object whose keys are looked up in `node`. */
  private object(node: KeyNode, depth: number): boolean {
    const p = this.p;
    this.i++;
    this.ws();
    if (p[this.i] === 0x7d) {
      this.i++;
      return true;
    }
    for (;;) {
      if (this.i >= this.end || p[this.i] !== 0x22) return false;
      const keyStart = this.i + 1;
      const keyEnd = this.plainString(keyStart);
      if (keyEnd < 0) return false;
      this.i = keyEnd + 1;
      this.ws();
      if (p[this.i] !== 0x3a) return false;
      this.i++;
      this.ws();
      const target = this.find(node, keyStart, keyEnd);
      if (target) {
        if (this.filled[target.slot] !== 0) return false;
        this.filled[target.slot] = 1;
        if (!this.value(target, depth)) return false;
      } else if (!this.skip(depth + 1)) return false;
      const after = this.separator(0x7d);
      if (after !== MORE) return after === CLOSED;
    }
  }

  /** What follows a member of an object or array: a `,` and another member, its `close`, or anything else. */
  private separator(close: number): number {
    this.ws();
    const c = this.p[this.i];
    this.i++;
    if (c === 0x2c) {
      this.ws();
      return MORE;
    }
    return c === close && this.i <= this.end ? CLOSED : MALFORMED;
  }

  /** The index of the closing quote of a string starting at `from`; -1 for an escape, a control character or no end. */
  private plainString(from: number): number {
    const p = this.p;
    const end = this.end;
    for (let i = from; i < end; i++) {
      const c = p[i]!;
      if (c === 0x22) return i;
      if (c === 0x5c || c < 0x20) return -1;
      if (c >= 0x80) this.high = true;
    }
    return -1;
  }

  private find(node: KeyNode, start: number, end: number): Target | undefined {
    const p = this.p;
    const length = end - start;
    const entries = node.entries;
    outer: for (let e = 0; e < entries.length; e++) {
      const key = entries[e]!.key;
      if (key.length !== length) continue;
      for (let k = 0; k < length; k++) if (key[k] !== p[start + k]) continue outer;
      return entries[e]!.target;
    }
    if (!node.caseInsensitive) return undefined;
    let ascii = true;
    for (let k = start; k < end; k++) if (p[k]! >= 0x80) ascii = false;
    if (!ascii) {
      // Unicode's lower case can fold a non-ASCII key onto an ASCII name (K, the Kelvin sign, is k).
      const lower = this.text.toString('utf8', start, end).toLowerCase();
      return entries.find((e) => e.lower === lower)?.target;
    }
    outer: for (let e = 0; e < entries.length; e++) {
      const key = entries[e]!.lowerBytes;
      if (!key || key.length !== length) continue;
      for (let k = 0; k < length; k++) {
        const c = p[start + k]!;
        if (key[k] !== (c >= 0x41 && c <= 0x5a ? c | 0x20 : c)) continue outer;
      }
      return entries[e]!.target;
    }
    return undefined;
  }

  private value(target: Target, depth: number): boolean {
    const p = this.p;
    if (target.kind === 'path') return p[this.i] === 0x7b ? this.object(target.node, depth + 1) : this.skip(depth + 1);
    if (target.kind === 'other') {
      const start = this.i;
      if (!this.skip(depth + 1)) return false;
      const top = this.columns[target.top]!;
      try {
        this.others[target.top] = coerce(parseJsonExact(this.text.toString('utf8', start, this.i)), top.column.type, top.column.name);
      } catch {
        return false;
      }
      return true;
    }
    const f = target.field;
    if (target.node) {
      if (p[this.i] === 0x6e) return this.literal(NULL);
      if (p[this.i] !== 0x7b) return false;
      this.present[f.id] = 1;
      return this.object(target.node, depth + 1);
    }
    return this.leaf(f);
  }

  private leaf(f: Field): boolean {
    const p = this.p;
    const c = p[this.i]!;
    const id = f.id;
    const kind = f.type.kind;
    if (c === 0x6e) return this.literal(NULL);
    if (c === 0x22) {
      const start = this.i + 1;
      const end = this.plainString(start);
      if (end < 0) return false;
      this.i = end + 1;
      if (kind === 'string' || kind === 'binary') {
        this.sources[id] = p;
        this.starts[id] = start;
        this.ends[id] = end;
        this.present[id] = 1;
        return true;
      }
      // Numbers, booleans and times written as text are read as the general path reads them.
      let value: unknown;
      try {
        value = coerce(this.text.toString('utf8', start, end), f.type, f.path);
      } catch {
        return false;
      }
      this.set(f, value);
      return true;
    }
    if (kind === 'string' || kind === 'binary') return false;
    if (c === 0x74 || c === 0x66) {
      if (kind !== 'boolean' || !this.literal(c === 0x74 ? TRUE : FALSE)) return false;
      this.numbers[id] = c === 0x74 ? 1 : 0;
      this.present[id] = 1;
      return true;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) return false;
    const start = this.i;
    const value = this.number();
    if (Number.isNaN(value)) return false;
    switch (kind) {
      case 'int':
        if (this.significant > 15 || !Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 31 - 1) return false;
        this.numbers[id] = value;
        break;
      case 'bigint': {
        let n: bigint;
        if (this.significant > 15) {
          if (!this.integral) return false;
          n = BigInt(this.text.toString('latin1', start, this.i));
        } else if (Number.isInteger(value)) n = BigInt(value);
        else return false;
        if (n < INT64_MIN || n > INT64_MAX) return false;
        this.bigints[id] = n;
        break;
      }
      case 'double':
      case 'float':
        this.numbers[id] = value;
        break;
      case 'timestamp': {
        const ms = Math.trunc(value);
        if (this.significant > 15 || !(Math.abs(ms) <= 8.64e15)) return false;
        this.bigints[id] = BigInt(ms);
        break;
      }
      default:
        return false;
    }
    this.present[id] = 1;
    return true;
  }

  private literal(word: Uint8Array): boolean {
    const p = this.p;
    if (this.i + word.length > this.end) return false;
    for (let k = 0; k < word.length; k++) if (p[this.i + k] !== word[k]) return false;
    this.i += word.length;
    return true;
  }

  /** A JSON number's value (NaN when the text is not one), as `JSON.parse` reads it. */
  private number(): number {
    const p = this.p;
    const end = this.end;
    const start = this.i;
    let i = start;
    const negative = p[i] === 0x2d;
    if (negative) i++;
    if (i >= end) return NaN;
    let mantissa = 0;
    let significant = 0;
    let fraction = 0;
    let c = p[i]!;
    if (c === 0x30) i++;
    else if (c >= 0x31 && c <= 0x39) {
      for (; i < end; i++) {
        c = p[i]!;
        if (c < 0x30 || c > 0x39) break;
        mantissa = mantissa * 10 + (c - 0x30);
        significant++;
      }
    } else return NaN;
    let integral = true;
    if (i < end && p[i] === 0x2e) {
      integral = false;
      const first = ++i;
      for (; i < end; i++) {
        c = p[i]!;
        if (c < 0x30 || c > 0x39) break;
        if (significant > 0 || c !== 0x30) significant++;
        mantissa = mantissa * 10 + (c - 0x30);
        fraction++;
      }
      if (i === first) return NaN;
    }
    let exponent = 0;
    if (i < end && (p[i] === 0x65 || p[i] === 0x45)) {
      integral = false;
      i++;
      const sign = p[i] === 0x2d ? -1 : 1;
      if (p[i] === 0x2d || p[i] === 0x2b) i++;
      const first = i;
      for (; i < end; i++) {
        c = p[i]!;
        if (c < 0x30 || c > 0x39) break;
        if (exponent < 100_000) exponent = exponent * 10 + (c - 0x30);
      }
      if (i === first) return NaN;
      exponent *= sign;
    }
    this.i = i;
    this.significant = significant;
    this.integral = integral;
    const scale = exponent - fraction;
    let value: number;
    if (significant > 15 || scale > 22 || scale < -22) value = Number(this.text.toString('latin1', start, i));
    else {
      value = mantissa === 0 ? 0 : scale >= 0 ? mantissa * POW10[scale]! : mantissa / POW10[-scale]!;
      if (negative) value = -value;
    }
    return value;
  }

  /** Any JSON value, checked and passed over. */
  private skip(depth: number): boolean {
    if (depth > MAX_DEPTH || this.i >= this.end) return false;
    const p = this.p;
    const c = p[this.i]!;
    if (c === 0x22) return this.skipString();
    if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      this.i++;
      this.ws();
      if (p[this.i] === close) {
        this.i++;
        return true;
      }
      for (;;) {
        if (c === 0x7b) {
          if (p[this.i] !== 0x22 || !this.skipString()) return false;
          this.ws();
          if (p[this.i] !== 0x3a) return false;
          this.i++;
          this.ws();
        }
        if (!this.skip(depth + 1)) return false;
        const after = this.separator(close);
        if (after !== MORE) return after === CLOSED;
      }
    }
    if (c === 0x74) return this.literal(TRUE);
    if (c === 0x66) return this.literal(FALSE);
    if (c === 0x6e) return this.literal(NULL);
    return !Number.isNaN(this.number());
  }

  private skipString(): boolean {
    const p = this.p;
    const end = this.end;
    let i = this.i + 1;
    while (i < end) {
      const c = p[i]!;
      if (c === 0x22) {
        this.i = i + 1;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = p[i + 1];
        if (e === 0x75) {
          for (let k = i + 2; k < i + 6; k++) {
            const h = p[k];
            if (h === undefined || k >= end || !((h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) return false;
          }
          i += 6;
          continue;
        }
        if (e !== 0x22 && e !== 0x5c && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return false;
        i += 2;
        continue;
      }
      if (c >= 0x80) this.high = true;
      i++;
    }
    return false;
  }
}

/** A row group's columns: each record scanned (or decoded the general way) is kept in its leaves' stores. */
export class RowGroupColumns {
  readonly tops: TopColumn[] = [];
  /** The leaf columns in schema order. */
  readonly leaves: LeafColumn[];
  rows = 0;
  private readonly scanner: RecordScanner;
  private records: Uint8Array = EMPTY;

  constructor(spec: SessionSpec) {
    const scanner = (this.scanner = new RecordScanner(spec.columns, spec.deserializer));
    const dictionary = spec.enableDictionaryCompression;
    this.leaves = scanner.leafFields.map((f) => (f.kind === 'bytes' ? new BytesColumn(f.names, f.level, dictionary) : new NumberColumn(f.names, f.level, dictionary, f.kind!)));
    for (const { column, field } of scanner.columns) {
      if (field) this.tops.push({ column, field, leaves: this.leaves.filter((_, l) => scanner.leafFields[l]!.chain[0] === field.id) });
      else this.tops.push({ column, values: [] });
    }
  }

  /**
   * Reads record [start, end) of `payload` into the columns; false, with nothing kept, when the
   * record must go the general way.
   */
  read(payload: Uint8Array, start: number, end: number): boolean {
    if (payload !== this.records) {
      // Strings are kept where they are in the row group's records.
      this.records = payload;
      for (const leaf of this.leaves) if (leaf instanceof BytesColumn) leaf.records = payload;
    }
    if (!this.scanner.scan(payload, start, end)) return false;
    this.keep();
    return true;
  }

  /** Keeps a row the general path decoded and coerced (`rowOf`'s values, one per column). */
  append(row: readonly unknown[]): void {
    this.scanner.assign(row);
    this.keep();
  }

  private keep(): void {
    const { present, sources, starts, ends, numbers, bigints, others, fields, leafFields } = this.scanner;
    for (let t = 0; t < this.tops.length; t++) this.tops[t]!.values?.push(others[t]);
    for (let l = 0; l < leafFields.length; l++) {
      const f = leafFields[l]!;
      const chain = f.chain;
      let level = 0;
      let k = 0;
      for (; k < chain.length; k++) {
        const id = chain[k]!;
        if (present[id] === 0) break;
        level += fields[id]!.optional;
      }
      const leaf = this.leaves[l]!;
      if (k < chain.length) {
        leaf.absent(level);
        continue;
      }
      const id = f.id;
      if (leaf instanceof BytesColumn) leaf.add(sources[id]!, starts[id]!, ends[id]!);
      else (leaf as NumberColumn).add(f.kind === 'int64' ? bigints[id]! : numbers[id]!);
    }
    this.rows++;
  }
}

const MORE = 0;
const CLOSED = 1;
const MALFORMED = 2;
const TRUE = encoder.encode('true');
const FALSE = encoder.encode('false');
const NULL = encoder.encode('null');
