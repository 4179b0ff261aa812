import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Encoding } from '../codecs.js';
import type { SourceRecord } from '../records.js';
import { grown } from '../typed-arrays.js';

const gzipAsync = promisify(gzip);
/**
 * Manifests are gzip'd at level 1: a 128 MB object's manifest (about 5 MB of JSON) then takes a
 * third of the compressor's time it took at level 6, for about 30 % more bytes — on the thread pool
 * that compresses the objects themselves.
 */
const MANIFEST_GZIP_LEVEL = 1;
const gunzipAsync = promisify(gunzip);

/**
 * An object's manifest: what it holds, record by record, so the archive can be read back exactly
 * (split again without a delimiter, binary records intact, filtered by arrival time, each record
 * with its source position). Columnar and gzip'd: one array per field, arrival times as offsets
 * from the first, shards as indexes into one list. Record i starts at the sum of the lengths (and
 * delimiters) before it, in the object's bytes once decompressed.
 */
export interface Manifest {
  readonly format: 'firehose-manifest';
  readonly version: 1;
  readonly deliveryStream: string;
  readonly bucket: string;
  /** The object this manifest describes. */
  readonly key: string;
  readonly encoding: Encoding;
  /** What follows each record in the object ("\n" with appendNewlineDelimiter, else ""). */
  readonly delimiter: string;
  readonly records: number;
  /**
   * The object's bytes once decompressed. For PARQUET, rows are the records, in this order, and
   * lengths and rawBytes are those of the records before conversion (no offsets into the file).
   */
  readonly rawBytes: number;
  /** Arrival times: the first (epoch ms) and, per record, milliseconds after it. */
  readonly firstArrival: number;
  readonly lastArrival: number;
  readonly shards: readonly string[];
  readonly columns: {
    readonly shard: readonly number[];
    /**
     * Each as its difference from the one before it of the same shard: `"<n>:<rest>"` is the
     * previous one's first n digits, then rest (a shard's sequence numbers share most of theirs;
     * a KPL aggregate's records share all). The first of a shard is written whole.
     */
    readonly sequenceNumber: readonly string[];
    readonly subSequenceNumber: readonly number[];
    readonly partitionKey: readonly string[];
    readonly arrival: readonly number[];
    readonly length: readonly number[];
  };
}

/** What a manifest says of its object besides its records. */
export interface ManifestObject {
  deliveryStream: string;
  bucket: string;
  key: string;
  encoding: Encoding;
  delimiter: string;
}

export interface ManifestEntry {
  readonly offset: number;
  readonly length: number;
  readonly arrival: number;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
  readonly partitionKey: string;
}

/** A growable column of numbers in a typed array: no per-record object for the collector to trace. */
class NumberColumn<T extends Float64Array | Uint32Array> {
  length = 0;
  constructor(private values: T) {}

  /** The column's slots (the first `length` are its values), for writers that loop over them. */
  get slots(): T {
    return this.values;
  }
  push(value: number): void {
    this.values = grown(this.values, this.length + 1);
    this.values[this.length++] = value;
  }
  at(i: number): number {
    return this.values[i]!;
  }
  /** What the column takes in memory (its room, not only its values). */
  get memoryBytes(): number {
    return this.values.byteLength;
  }
}

/**
 * A growable column of strings as UTF-8 bytes in one buffer: a record's strings need not outlive it
 * (kept as strings, a buffer's worth of them would all be promoted and traced by the collector).
 */
class StringColumn {
  private bytes = Buffer.allocUnsafe(8 * 1024);
  private used = 0;
  private readonly ends = new NumberColumn(new Uint32Array(256));

  push(value: string): void {
    const room = this.bytes.length - this.used;
    if (room < value.length * 3) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + value.length * 3));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    this.used += this.bytes.write(value, this.used, 'utf8');
    this.ends.push(this.used);
  }

  /**
   * `"<n>:<value from n on>"` for an ASCII value (a sequence number), written byte by byte: no
   * string is made per record.
   */
  pushAsciiFrom(value: string, n: number): void {
    if (this.bytes.length - this.used < value.length + 8) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + value.length + 8));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    if (n >= 100) this.bytes[this.used++] = 0x30 + Math.floor(n / 100);
    if (n >= 10) this.bytes[this.used++] = 0x30 + (Math.floor(n / 10) % 10);
    this.bytes[this.used++] = 0x30 + (n % 10);
    this.bytes[this.used++] = 0x3a; // ':'
    for (let i = n; i < value.length; i++) this.bytes[this.used++] = value.charCodeAt(i);
    this.ends.push(this.used);
  }

  at(i: number): string {
    return this.bytes.toString('utf8', i === 0 ? 0 : this.ends.at(i - 1), this.ends.at(i));
  }

  get memoryBytes(): number {
    return this.bytes.length + this.ends.memoryBytes;
  }

  /**
   * The column as a JSON array of strings: each string's bytes copied as they are checked (one
   * pass, no call per string), and written by JSON.stringify instead when one needs escaping.
   */
  writeJson(out: JsonBytes): void {
    const count = this.ends.length;
    const ends = this.ends.slots;
    const bytes = this.bytes;
    // Every string as it is, with its quotes and comma: escapes make room for themselves below.
    out.reserve(this.used + 3 * count + 2);
    let buffer = out.buffer;
    let at = out.length;
    buffer[at++] = 0x5b;
    for (let i = 0, start = 0; i < count; i++) {
      const end = ends[i]!;
      if (i > 0) buffer[at++] = 0x2c;
      const opened = at;
      buffer[at++] = 0x22;
      let j = start;
      for (; j < end; j++) {
        const c = bytes[j]!;
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        buffer[at++] = c;
      }
      if (j < end) {
        out.length = opened;
        out.text(JSON.stringify(this.at(i)));
        out.reserve(this.used - end + 3 * (count - i) + 2);
        buffer = out.buffer;
        at = out.length;
      } else buffer[at++] = 0x22;
      start = end;
    }
    buffer[at++] = 0x5d;
    out.length = at;
  }
}

/** JSON written as bytes into one growing buffer: a manifest's columns without a string per record. */
class JsonBytes {
  /** Written so far: `buffer[0, length)`. Column writers write into the buffer directly, after reserve(). */
  buffer = Buffer.allocUnsafe(1 << 20);
  length = 0;

  /** Room for `bytes` more at `length` (the buffer may be replaced). */
  reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buffer[this.length++] = b;
  }

  text(value: string): void {
    this.reserve(value.length * 3);
    this.length += this.buffer.write(value, this.length, 'utf8');
  }

  /**
   * A column as a JSON array of numbers, each less `minus`: a non-negative integer below 2^32 digit
   * by digit straight into the buffer (the manifest's numbers are), anything else as JSON writes it.
   */
  numbers(column: NumberColumn<Float64Array | Uint32Array>, minus = 0): void {
    const count = column.length;
    const values = column.slots;
    this.reserve(11 * count + 2);
    let buffer = this.buffer;
    let at = this.length;
    buffer[at++] = 0x5b;
    for (let i = 0; i < count; i++) {
      if (i > 0) buffer[at++] = 0x2c;
      const n = values[i]! - minus;
      if (n >= 0 && n <= 0xffffffff && n === Math.floor(n)) {
        let digits = 1;
        for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
        for (let k = at + digits - 1, m = n; k >= at; k--, m = Math.floor(m / 10)) buffer[k] = 0x30 + (m % 10);
        at += digits;
      } else {
        this.length = at;
        this.text(JSON.stringify(n));
        this.reserve(11 * (count - i) + 2);
        buffer = this.buffer;
        at = this.length;
      }
    }
    buffer[at++] = 0x5d;
    this.length = at;
  }

  get bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/**
 * Collects a buffer's manifest as records are appended, at a few typed-array slots per record:
 * numbers in typed arrays, each sequence number kept only as its difference from the shard's one
 * before it, the partition key as the record's own string.
 */
export class ManifestBuilder {
  private readonly shards: string[] = [];
  private readonly shardIndex = new Map<string, number>();
  private readonly shard = new NumberColumn(new Uint32Array(256));
  private readonly sequenceNumber = new StringColumn();
  private readonly subSequenceNumber = new NumberColumn(new Uint32Array(256));
  private readonly partitionKey = new StringColumn();
  private readonly arrivalAt = new NumberColumn(new Float64Array(256));
  private readonly length = new NumberColumn(new Uint32Array(256));
  /** Per shard (by index): its last sequence number, which the next one is written against. */
  private readonly lastSequence: string[] = [];
  private lastShard: string | undefined;
  private lastShardIndex = 0;
  private firstArrival = Infinity;
  private lastArrival = -Infinity;
  /** Records appended, then taken out of the object (a Parquet row that could not be converted). */
  private readonly excluded = new Set<number>();

  add(record: SourceRecord): void {
    if (record.shardId !== this.lastShard) {
      let index = this.shardIndex.get(record.shardId);
      if (index === undefined) {
        index = this.shards.push(record.shardId) - 1;
        this.shardIndex.set(record.shardId, index);
      }
      this.lastShard = record.shardId;
      this.lastShardIndex = index;
    }
    const shard = this.lastShardIndex;
    this.shard.push(shard);
    const sequence = record.sequenceNumber;
    const before = this.lastSequence[shard];
    if (before === undefined) this.sequenceNumber.push(sequence);
    else {
      let n = 0;
      if (before === sequence) n = sequence.length;
      else while (n < sequence.length && sequence.charCodeAt(n) === before.charCodeAt(n)) n++;
      this.sequenceNumber.pushAsciiFrom(sequence, n);
    }
    this.lastSequence[shard] = sequence;
    this.subSequenceNumber.push(record.subSequenceNumber);
    this.partitionKey.push(record.partitionKey);
    const arrival = record.approximateArrivalTimestamp;
    this.arrivalAt.push(arrival);
    if (arrival < this.firstArrival) this.firstArrival = arrival;
    if (arrival > this.lastArrival) this.lastArrival = arrival;
    this.length.push(record.data.length);
  }

  get records(): number {
    return this.length.length - this.excluded.size;
  }

  /** What its columns take in memory now: a buffer's byte budget counts it as it grows. */
  get memoryBytes(): number {
    return this.shard.memoryBytes + this.sequenceNumber.memoryBytes + this.subSequenceNumber.memoryBytes + this.partitionKey.memoryBytes + this.arrivalAt.memoryBytes + this.length.memoryBytes;
  }

  /** The record appended `index`-th (from 0) is not in the object after all. */
  exclude(index: number): void {
    this.excluded.add(index);
  }

  /**
   * The manifest gzip'd, as encodeManifest(build(object)) gives it, but written as bytes straight
   * from the columns: building it as arrays of numbers and strings cost a string per record at
   * every seal (2.5 % of the read path's main thread, and the collector's time besides).
   */
  encode(object: ManifestObject): Promise<Buffer> {
    if (this.excluded.size > 0) return encodeManifest(this.build(object));
    const n = this.length.length;
    let rawBytes = 0;
    for (let i = 0; i < n; i++) rawBytes += this.length.at(i) + object.delimiter.length;
    const first = n === 0 ? 0 : this.firstArrival;
    const head = JSON.stringify({
      format: 'firehose-manifest',
      version: 1,
      ...object,
      records: n,
      rawBytes,
      firstArrival: first,
      lastArrival: n === 0 ? 0 : this.lastArrival,
      shards: this.shards,
    });
    const out = new JsonBytes();
    out.text(head.slice(0, -1));
    out.text(',"columns":{"shard":');
    out.numbers(this.shard);
    out.text(',"sequenceNumber":');
    this.sequenceNumber.writeJson(out);
    out.text(',"subSequenceNumber":');
    out.numbers(this.subSequenceNumber);
    out.text(',"partitionKey":');
    this.partitionKey.writeJson(out);
    out.text(',"arrival":');
    out.numbers(this.arrivalAt, first);
    out.text(',"length":');
    out.numbers(this.length);
    out.text('}}');
    return gzipAsync(out.bytes, { level: MANIFEST_GZIP_LEVEL });
  }

  build(object: ManifestObject): Manifest {
    const n = this.length.length;
    const sequences = Array.from({ length: n }, (_, i) => this.sequenceNumber.at(i));
    // Taking records out breaks the chain of sequence differences: then every one is written whole.
    const whole = this.excluded.size > 0 ? wholeSequenceNumbers(sequences, Array.from({ length: n }, (_, i) => this.shard.at(i))) : undefined;
    const shard: number[] = [];
    const subSequenceNumber: number[] = [];
    const partitionKey: string[] = [];
    const arrival: number[] = [];
    const length: number[] = [];
    const kept: string[] = [];
    let rawBytes = 0;
    let first = Infinity;
    let last = -Infinity;
    for (let i = 0; i < n; i++) {
      if (this.excluded.has(i)) continue;
      shard.push(this.shard.at(i));
      kept.push(whole ? whole[i]! : sequences[i]!);
      subSequenceNumber.push(this.subSequenceNumber.at(i));
      partitionKey.push(this.partitionKey.at(i));
      length.push(this.length.at(i));
      rawBytes += this.length.at(i) + object.delimiter.length;
      const t = this.arrivalAt.at(i);
      if (t < first) first = t;
      if (t > last) last = t;
    }
    if (this.excluded.size === 0) {
      first = this.firstArrival;
      last = this.lastArrival;
    }
    if (length.length === 0) first = last = 0;
    for (let i = 0, j = 0; i < n; i++) if (!this.excluded.has(i)) arrival[j++] = this.arrivalAt.at(i) - first;
    return {
      format: 'firehose-manifest',
      version: 1,
      ...object,
      records: length.length,
      rawBytes,
      firstArrival: first,
      lastArrival: last,
      shards: this.shards,
      columns: { shard, sequenceNumber: whole ? sharedPrefixes(kept, shard) : kept, subSequenceNumber, partitionKey, arrival, length },
    };
  }
}

export const MANIFEST_SUFFIX = '.manifest.json.gz';

const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

/** `yyyy/MM/dd/HH/` of a time, in UTC: the hour a manifest is filed under. */
export function hourPath(time: number): string {
  const t = new Date(time);
  return `${t.getUTCFullYear()}/${pad2(t.getUTCMonth() + 1)}/${pad2(t.getUTCDate())}/${pad2(t.getUTCHours())}/`;
}

/**
 * Where an object's manifest goes: `<manifests prefix><yyyy/MM/dd/HH of its first record's arrival>/<object key>.manifest.json.gz`.
 * Time first, then the object's own key: a replay lists one hour of one prefix (`clicks/`,
 * `customer=a/`) without listing the bucket, whatever the objects' prefix expressions are.
 */
export function manifestKey(manifestsPrefix: string, objectKey: string, firstArrival: number): string {
  return `${manifestsPrefix}${hourPath(firstArrival)}${objectKey}${MANIFEST_SUFFIX}`;
}

/** Level 6: nearly level 9's size here (the columns are already compact), at a fraction of its CPU. */
export function encodeManifest(manifest: Manifest): Promise<Buffer> {
  return gzipAsync(JSON.stringify(manifest), { level: MANIFEST_GZIP_LEVEL });
}

/** Sequence numbers as differences from the previous one of the same shard (see Manifest.columns.sequenceNumber). */
function sharedPrefixes(sequenceNumbers: readonly string[], shards: readonly number[]): string[] {
  const previous = new Map<number, string>();
  return sequenceNumbers.map((sequence, i) => {
    const before = previous.get(shards[i]!);
    previous.set(shards[i]!, sequence);
    if (before === undefined) return sequence;
    let n = 0;
    while (n < sequence.length && n < before.length && sequence.charCodeAt(n) === before.charCodeAt(n)) n++;
    return `${n}:${sequence.slice(n)}`;
  });
}

function wholeSequenceNumbers(encoded: readonly string[], shards: readonly number[]): string[] {
  const previous = new Map<number, string>();
  return encoded.map((e, i) => {
    const colon = e.indexOf(':');
    const before = previous.get(shards[i]!);
    const sequence = colon === -1 || before === undefined ? e : before.slice(0, Number(e.slice(0, colon))) + e.slice(colon + 1);
    previous.set(shards[i]!, sequence);
    return sequence;
  });
}

export class ManifestError extends Error {}

export async function decodeManifest(bytes: Uint8Array, where: string): Promise<Manifest> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await gunzipAsync(bytes)).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`${where}: not a gzip'd JSON manifest (${(err as Error).message})`);
  }
  const m = parsed as Manifest;
  if (m?.format !== 'firehose-manifest') throw new ManifestError(`${where}: not a firehose manifest`);
  if (m.version !== 1) throw new ManifestError(`${where}: manifest version ${String(m.version)}; this firehose reads version 1`);
  const n = m.records;
  const c = m.columns;
  for (const [name, column] of Object.entries(c)) {
    if (!Array.isArray(column) || column.length !== n) throw new ManifestError(`${where}: column ${name} has ${Array.isArray(column) ? column.length : 'no'} entries for ${n} records`);
  }
  return m;
}

/** The manifest's records, in object order, with their offsets in the decompressed object. */
export function* manifestEntries(m: Manifest): Generator<ManifestEntry> {
  let offset = 0;
  const { shard, sequenceNumber, subSequenceNumber, partitionKey, arrival, length } = m.columns;
  const sequenceNumbers = wholeSequenceNumbers(sequenceNumber, shard);
  for (let i = 0; i < m.records; i++) {
    yield {
      offset,
      length: length[i]!,
      arrival: m.firstArrival + arrival[i]!,
      shardId: m.shards[shard[i]!]!,
      sequenceNumber: sequenceNumbers[i]!,
      subSequenceNumber: subSequenceNumber[i]!,
      partitionKey: partitionKey[i]!,
    };
    offset += length[i]! + m.delimiter.length;
  }
}
