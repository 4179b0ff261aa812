/**
 * The column chunks the conversion writes itself: one per primitive column, or primitive field of
 * a struct, that nothing above repeats. Values arrive as bytes and numbers (from a record's text,
 * or from a record decoded the general way) and are kept in typed stores, not as JS values:
 * a string is its record's UTF-8 bytes, referred to where they are and copied once, into its page.
 * Written as hyparquet-writer writes a chunk (data pages v2, PLAIN or a dictionary chosen by the
 * same rule, statistics, an offset index), so its footer takes them as its own.
 */
import type { ColumnChunk, Encoding, OffsetIndex, Statistics } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import { grown } from '../typed-arrays.js';

/** How a leaf's values are kept and written. */
export type LeafKind = 'bytes' | 'int32' | 'int64' | 'double' | 'float' | 'boolean';

export interface LeafChunk {
  readonly chunk: ColumnChunk;
  readonly offsetIndex: OffsetIndex | undefined;
}

export interface ChunkSettings {
  readonly codec: 'SNAPPY' | 'GZIP' | 'UNCOMPRESSED';
  readonly compress: ((bytes: Uint8Array) => Uint8Array) | undefined;
  readonly pageSizeBytes: number;
}

/** The first check of whether a dictionary can pay, and the rows between the next ones (doubling). */
const FIRST_DICTIONARY_CHECK = 1024;

function bitWidth(max: number): number {
  return max === 0 ? 0 : 32 - Math.clz32(max);
}

/** Unsigned byte order, as Parquet orders BYTE_ARRAY statistics (UTF-8's code point order). */
function compareBytes(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aEnd - aStart - (bEnd - bStart);
}

/** One leaf column of one row group: its definition levels, its values, and how to write them. */
export abstract class LeafColumn {
  /** A definition level per row: `maxDefinitionLevel` where the row has a value. */
  protected levels = new Uint8Array(1024);
  rows = 0;
  /** Rows with a value. */
  values = 0;

  constructor(
    readonly path: readonly string[],
    readonly element: { readonly type: 'BYTE_ARRAY' | 'INT32' | 'INT64' | 'DOUBLE' | 'FLOAT' | 'BOOLEAN' },
    readonly maxDefinitionLevel: number,
  ) {}

  /** A row without a value: `level` counts the optional fields above it that are present. */
  absent(level: number): void {
    this.level(level);
  }

  protected level(level: number): void {
    if (this.rows === this.levels.length) this.levels = grown(this.levels, this.rows + 1);
    this.levels[this.rows++] = level;
  }

  /** The dictionary's distinct values, or undefined when the chunk is written PLAIN. */
  protected abstract dictionarySize(): number | undefined;
  /** PLAIN bytes of the dictionary's values. */
  protected abstract dictionaryPage(): Uint8Array;
  /** Drops the dictionary, keeping every value PLAIN. */
  protected abstract dropDictionary(): void;
  /** PLAIN bytes of values [from, to). */
  protected abstract plainValues(from: number, to: number): Uint8Array;
  protected abstract indexes(): Int32Array;
  /** Page-size estimate of value `index`, as hyparquet-writer counts it. */
  protected abstract valueSize(index: number): number;
  /** Bytes of the values in PLAIN, and of the dictionary's values. */
  protected abstract plainAndDictionaryBytes(): { plain: number; dictionary: number };
  protected abstract statistics(): Statistics;

  /**
   * hyparquet-writer's rule: a dictionary plus its bit-packed indexes must at least halve the
   * PLAIN bytes; checked as the values arrive too, so a column of distinct values stops being
   * hashed after its first thousand rows.
   */
  protected dictionaryPays(final: boolean): boolean {
    const distinct = this.dictionarySize();
    // A column of nulls only has no dictionary to write (hyparquet-writer writes none either).
    if (distinct === undefined || distinct === 0) return false;
    const { plain, dictionary } = this.plainAndDictionaryBytes();
    const indexBytes = final ? Math.ceil((this.values * Math.ceil(Math.log2(Math.max(distinct, 1)))) / 8) : 0;
    return 2 * (dictionary + indexBytes) <= plain;
  }

  protected checkDictionary(): void {
    if (this.values >= FIRST_DICTIONARY_CHECK && (this.values & (this.values - 1)) === 0 && !this.dictionaryPays(false)) this.dropDictionary();
  }

  /** Writes the chunk at the writer's offset. */
  write(writer: ByteWriter, settings: ChunkSettings): LeafChunk {
    const { codec, compress, pageSizeBytes } = settings;
    const offsetStart = writer.offset;
    let uncompressed = 0;
    const useDictionary = this.dictionaryPays(true);
    if (!useDictionary) this.dropDictionary();
    const encoding: Encoding = useDictionary ? 'RLE_DICTIONARY' : this.element.type === 'BOOLEAN' ? 'RLE' : 'PLAIN';
    const encodings: Encoding[] = useDictionary ? ['PLAIN', 'RLE_DICTIONARY'] : [encoding];
    let dictionaryOffset: bigint | undefined;
    if (useDictionary) {
      dictionaryOffset = BigInt(writer.offset);
      const body = this.dictionaryPage();
      const compressed = compress?.(body) ?? body;
      const headerStart = writer.offset;
      writePageHeader(writer, {
        type: 'DICTIONARY_PAGE',
        uncompressed_page_size: body.length,
        compressed_page_size: compressed.length,
        dictionary_page_header: { num_values: this.dictionarySize()!, encoding: 'PLAIN' },
      });
      uncompressed += writer.offset - headerStart + body.length;
      writer.appendBytes(compressed);
    }
    const dataPageOffset = BigInt(writer.offset);
    const locations: OffsetIndex['page_locations'] = [];
    const max = this.maxDefinitionLevel;
    const levelWidth = bitWidth(max);
    let row = 0;
    let value = 0;
    do {
      const firstRow = row;
      const firstValue = value;
      let bytes = 0;
      for (; row < this.rows; row++) {
        if (this.levels[row] !== max) continue;
        const size = useDictionary ? 4 : this.valueSize(value);
        if (bytes + size >= pageSizeBytes && bytes > 0) break;
        bytes += size;
        value++;
      }
      const pageOffset = writer.offset;
      const levels = new ByteWriter(Math.max(64, (row - firstRow) >> 2));
      if (max > 0) writeRleBitPackedHybrid(levels, this.levels.subarray(firstRow, row), levelWidth);
      let body: Uint8Array;
      if (useDictionary) {
        const indexes = this.indexes().subarray(firstValue, value);
        let largest = 0;
        for (let i = 0; i < indexes.length; i++) if (indexes[i]! > largest) largest = indexes[i]!;
        const page = new ByteWriter(Math.max(64, indexes.length));
        const width = bitWidth(largest);
        page.appendUint8(width);
        writeRleBitPackedHybrid(page, indexes, width);
        body = page.getBytes();
      } else body = this.plainValues(firstValue, value);
      const compressed = compress?.(body) ?? body;
      const headerStart = writer.offset;
      writePageHeader(writer, {
        type: 'DATA_PAGE_V2',
        uncompressed_page_size: levels.offset + body.length,
        compressed_page_size: levels.offset + compressed.length,
        data_page_header_v2: {
          num_values: row - firstRow,
          num_nulls: row - firstRow - (value - firstValue),
          num_rows: row - firstRow,
          encoding,
          definition_levels_byte_length: levels.offset,
          repetition_levels_byte_length: 0,
          is_compressed: codec !== 'UNCOMPRESSED',
        },
      });
      uncompressed += writer.offset - headerStart + levels.offset + body.length;
      writer.appendBytes(levels.getBytes());
      writer.appendBytes(compressed);
      locations.push({ offset: BigInt(pageOffset), compressed_page_size: writer.offset - pageOffset, first_row_index: BigInt(firstRow) });
    } while (row < this.rows);
    const chunk: ColumnChunk = {
      meta_data: {
        type: this.element.type,
        encodings,
        path_in_schema: [...this.path],
        codec,
        num_values: BigInt(this.rows),
        total_compressed_size: BigInt(writer.offset - offsetStart),
        total_uncompressed_size: BigInt(uncompressed),
        data_page_offset: dataPageOffset,
        dictionary_page_offset: dictionaryOffset,
        statistics: this.statistics(),
        encoding_stats: [
          ...(useDictionary ? [{ page_type: 'DICTIONARY_PAGE' as const, encoding: 'PLAIN' as const, count: 1 }] : []),
          { page_type: 'DATA_PAGE_V2' as const, encoding, count: locations.length },
        ],
      },
      file_offset: BigInt(offsetStart),
    };
    return { chunk, offsetIndex: locations.length > 1 ? { page_locations: locations } : undefined };
  }
}

/**
 * Strings and binary values. PLAIN, a value is where its bytes already are: in the row group's
 * records (`records`), or, for a row decoded the general way, in a side arena; the page is put
 * together only when it is written. While a dictionary can pay, a value is an index into a table
 * of distinct values, kept PLAIN (a 4-byte length, then the bytes) as the dictionary page is.
 */
export class BytesColumn extends LeafColumn {
  /** The bytes most values are in: the row group's records. */
  records: Uint8Array = new Uint8Array(0);
  private side: Uint8Array = new Uint8Array(0);
  private sideEnd = 0;
  private starts = new Int32Array(1024);
  private lengths = new Int32Array(1024);
  /** 1 where a value's bytes are in `side`, not in `records`. */
  private inSide = new Uint8Array(1024);
  private valueBytes = 0;
  // The dictionary, while it is kept: distinct values PLAIN in `distinct`, found by FNV-1a hash.
  private distinct: Uint8Array | undefined = new Uint8Array(1 << 12);
  private distinctEnd = 0;
  private distinctStarts = new Int32Array(256);
  private distinctHashes = new Int32Array(256);
  private distinctCount = 0;
  private table = new Int32Array(1024);
  private valueIndexes = new Int32Array(1024);

  constructor(path: readonly string[], maxDefinitionLevel: number, dictionary: boolean) {
    super(path, { type: 'BYTE_ARRAY' }, maxDefinitionLevel);
    if (!dictionary) this.distinct = undefined;
  }

  add(source: Uint8Array, start: number, end: number): void {
    this.level(this.maxDefinitionLevel);
    this.valueBytes += end - start;
    if (this.distinct) {
      if (this.values === this.valueIndexes.length) this.valueIndexes = grown(this.valueIndexes, this.values + 1);
      this.valueIndexes[this.values++] = this.lookup(source, start, end);
      this.checkDictionary();
      return;
    }
    if (source === this.records) this.refer(0, start, end - start);
    else {
      const at = this.sideEnd;
      if (at + end - start > this.side.length) this.side = grown(this.side, Math.max(1 << 12, at + end - start));
      this.side.set(source.subarray(start, end), at);
      this.sideEnd = at + end - start;
      this.refer(1, at, end - start);
    }
  }

  private refer(inSide: number, start: number, length: number): void {
    const n = this.values++;
    if (n === this.starts.length) {
      this.starts = grown(this.starts, n + 1);
      this.lengths = grown(this.lengths, n + 1);
      this.inSide = grown(this.inSide, n + 1);
    }
    this.starts[n] = start;
    this.lengths[n] = length;
    this.inSide[n] = inSide;
  }

  private lookup(source: Uint8Array, start: number, end: number): number {
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ source[i]!, 0x01000193);
    const length = end - start;
    const mask = this.table.length - 1;
    const distinct = this.distinct!;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.table[slot]! - 1;
      if (entry < 0) break;
      if (this.distinctHashes[entry] !== hash) continue;
      const at = this.distinctStarts[entry]!;
      if (lengthBefore(distinct, at) === length && compareBytes(distinct, at, at + length, source, start, end) === 0) return entry;
    }
    const entry = this.distinctCount++;
    if (entry === this.distinctStarts.length) {
      this.distinctStarts = grown(this.distinctStarts, entry + 1);
      this.distinctHashes = grown(this.distinctHashes, entry + 1);
    }
    let at = this.distinctEnd;
    if (at + 4 + length > distinct.length) this.distinct = grown(distinct, at + 4 + length);
    writeLength(this.distinct!, at, length);
    at += 4;
    this.distinctStarts[entry] = at;
    this.distinctHashes[entry] = hash;
    this.distinct!.set(source.subarray(start, end), at);
    this.distinctEnd = at + length;
    if (2 * this.distinctCount > this.table.length) this.rehash();
    else {
      for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
        if (this.table[slot] === 0) {
          this.table[slot] = entry + 1;
          break;
        }
      }
    }
    return entry;
  }

  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2);
    const mask = this.table.length - 1;
    for (let entry = 0; entry < this.distinctCount; entry++) {
      let slot = this.distinctHashes[entry]! & mask;
      while (this.table[slot] !== 0) slot = (slot + 1) & mask;
      this.table[slot] = entry + 1;
    }
  }

  protected dictionarySize() {
    return this.distinct ? this.distinctCount : undefined;
  }
  protected dictionaryPage() {
    return this.distinct!.subarray(0, this.distinctEnd);
  }
  protected dropDictionary() {
    const distinct = this.distinct;
    if (!distinct) return;
    // The distinct values become the side arena the values refer to; later ones are added to it.
    this.distinct = undefined;
    this.side = distinct;
    this.sideEnd = this.distinctEnd;
    const count = this.values;
    this.values = 0;
    for (let i = 0; i < count; i++) {
      const at = this.distinctStarts[this.valueIndexes[i]!]!;
      this.refer(1, at, lengthBefore(distinct, at));
    }
    this.table = new Int32Array(0);
    this.valueIndexes = new Int32Array(0);
  }
  protected plainValues(from: number, to: number) {
    let size = 0;
    for (let i = from; i < to; i++) size += 4 + this.lengths[i]!;
    const page = new Uint8Array(size);
    let at = 0;
    for (let i = from; i < to; i++) {
      const length = this.lengths[i]!;
      const source = this.inSide[i] === 1 ? this.side : this.records;
      const start = this.starts[i]!;
      writeLength(page, at, length);
      at += 4;
      if (length < 32) for (let k = start; k < start + length; k++) page[at++] = source[k]!;
      else {
        page.set(source.subarray(start, start + length), at);
        at += length;
      }
    }
    return page;
  }
  protected indexes() {
    return this.valueIndexes.subarray(0, this.values);
  }
  protected valueSize(index: number) {
    return this.lengths[index]!;
  }
  protected plainAndDictionaryBytes() {
    return { plain: this.valueBytes + 4 * this.values, dictionary: this.distinctEnd };
  }
  protected statistics(): Statistics {
    // Over the distinct values when there is a dictionary: the same bounds, fewer comparisons.
    let min: [Uint8Array, number, number] | undefined;
    let max: [Uint8Array, number, number] | undefined;
    const count = this.distinct ? this.distinctCount : this.values;
    for (let i = 0; i < count; i++) {
      let bytes: Uint8Array;
      let start: number;
      let end: number;
      if (this.distinct) {
        bytes = this.distinct;
        start = this.distinctStarts[i]!;
        end = start + lengthBefore(bytes, start);
      } else {
        bytes = this.inSide[i] === 1 ? this.side : this.records;
        start = this.starts[i]!;
        end = start + this.lengths[i]!;
      }
      if (!min || compareBytes(bytes, start, end, ...min) < 0) min = [bytes, start, end];
      if (!max || compareBytes(bytes, start, end, ...max) > 0) max = [bytes, start, end];
    }
    return {
      null_count: BigInt(this.rows - this.values),
      ...(min && max ? { min_value: min[0].slice(min[1], min[2]), max_value: max[0].slice(max[1], max[2]) } : {}),
    };
  }
}

/** The 4-byte little-endian length PLAIN writes before a value starting at `at`. */
function lengthBefore(bytes: Uint8Array, at: number): number {
  return bytes[at - 4]! | (bytes[at - 3]! << 8) | (bytes[at - 2]! << 16) | (bytes[at - 1]! << 24);
}

function writeLength(bytes: Uint8Array, at: number, length: number): void {
  bytes[at] = length & 0xff;
  bytes[at + 1] = (length >>> 8) & 0xff;
  bytes[at + 2] = (length >>> 16) & 0xff;
  bytes[at + 3] = length >>> 24;
}

type NumberStore = Int32Array | BigInt64Array | Float64Array | Float32Array | Uint8Array;
const STORES: Record<Exclude<LeafKind, 'bytes'>, { type: 'INT32' | 'INT64' | 'DOUBLE' | 'FLOAT' | 'BOOLEAN'; make: (n: number) => NumberStore; width: number }> = {
  int32: { type: 'INT32', make: (n) => new Int32Array(n), width: 4 },
  int64: { type: 'INT64', make: (n) => new BigInt64Array(n), width: 8 },
  double: { type: 'DOUBLE', make: (n) => new Float64Array(n), width: 8 },
  float: { type: 'FLOAT', make: (n) => new Float32Array(n), width: 4 },
  boolean: { type: 'BOOLEAN', make: (n) => new Uint8Array(n), width: 0.125 },
};

/** Numbers, bigints and booleans, in a typed array of the Parquet type; a dictionary by value while it can pay. */
export class NumberColumn extends LeafColumn {
  private store: NumberStore;
  private distinct: Map<number | bigint, number> | undefined;
  private distinctValues: Array<number | bigint> = [];
  private valueIndexes = new Int32Array(1024);
  private min: number | bigint | undefined;
  private max: number | bigint | undefined;
  private nans = 0;
  private readonly width: number;

  constructor(
    path: readonly string[],
    maxDefinitionLevel: number,
    dictionary: boolean,
    readonly kind: Exclude<LeafKind, 'bytes'>,
  ) {
    super(path, { type: STORES[kind].type }, maxDefinitionLevel);
    this.store = STORES[kind].make(1024);
    this.width = STORES[kind].width;
    // Booleans are written RLE, never with a dictionary (as hyparquet-writer writes them).
    this.distinct = dictionary && kind !== 'boolean' ? new Map() : undefined;
  }

  add(value: number | bigint): void {
    this.level(this.maxDefinitionLevel);
    const n = this.values;
    if (n === this.store.length) this.store = grown(this.store, n + 1);
    (this.store as { [i: number]: number | bigint })[n] = value;
    // What the column holds (a float32, say), not what was given.
    const held = this.store[n]!;
    this.values++;
    if (typeof held === 'number' && Number.isNaN(held)) this.nans++;
    else {
      if (this.min === undefined || held < this.min) this.min = held;
      if (this.max === undefined || held > this.max) this.max = held;
    }
    if (this.distinct) {
      let index = this.distinct.get(held);
      if (index === undefined) {
        index = this.distinctValues.length;
        this.distinct.set(held, index);
        this.distinctValues.push(held);
      }
      if (n === this.valueIndexes.length) this.valueIndexes = grown(this.valueIndexes, n + 1);
      this.valueIndexes[n] = index;
      this.checkDictionary();
    }
  }

  protected dictionarySize() {
    return this.distinct ? this.distinctValues.length : undefined;
  }
  protected dictionaryPage() {
    const page = STORES[this.kind].make(this.distinctValues.length);
    for (let i = 0; i < this.distinctValues.length; i++) (page as { [i: number]: number | bigint })[i] = this.distinctValues[i]!;
    return new Uint8Array(page.buffer, 0, page.byteLength);
  }
  protected dropDictionary() {
    this.distinct = undefined;
    this.distinctValues = [];
    this.valueIndexes = new Int32Array(0);
  }
  protected plainValues(from: number, to: number) {
    if (this.kind === 'boolean') {
      const page = new ByteWriter(Math.max(64, (to - from) >> 2));
      page.appendUint32(0);
      const length = writeRleBitPackedHybrid(page, this.store.subarray(from, to) as Uint8Array, 1);
      new DataView(page.buffer).setUint32(0, length, true);
      return page.getBytes();
    }
    const width = this.width;
    return new Uint8Array(this.store.buffer, this.store.byteOffset + from * width, (to - from) * width);
  }
  protected indexes() {
    return this.valueIndexes.subarray(0, this.values);
  }
  protected valueSize() {
    return this.width;
  }
  protected plainAndDictionaryBytes() {
    return { plain: this.values * this.width, dictionary: this.distinctValues.length * this.width };
  }
  protected statistics(): Statistics {
    const floating = this.kind === 'double' || this.kind === 'float';
    let min: number | bigint | boolean | undefined = this.min;
    let max: number | bigint | boolean | undefined = this.max;
    // As the Parquet spec asks: a zero bound is -0 as a minimum and +0 as a maximum.
    if (floating && min === 0) min = -0;
    if (floating && max === 0) max = 0;
    if (this.kind === 'boolean' && min !== undefined) [min, max] = [min === 1, max === 1];
    return {
      null_count: BigInt(this.rows - this.values),
      ...(min !== undefined ? { min_value: min, max_value: max } : {}),
      ...(floating ? { nan_count: BigInt(this.nans) } : {}),
    };
  }
}
