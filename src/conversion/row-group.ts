/**
 * One Parquet row group, encoded on its own: any conversion thread can encode any row group of any
 * file, so one file's row groups are converted on every core at once. The bytes are written as
 * though the row group began right after the file's 4-byte header; `placeRowGroup` moves its
 * offsets to where it really lands once the row groups before it are known, and `parquetFooter`
 * writes the file's indexes and metadata after the last.
 */
import { gzipSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { snappyCompress } from './snappy.js';
import type { ColumnChunk } from 'hyparquet';
import { RowGroupColumns } from './record-reader.js';
import { CoercionError, parseJsonExact, parquetSchema, rowOf, type SessionSpec } from './types.js';

/** "PAR1": the file's first four bytes, and its last. */
export const PARQUET_MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]);

type RowGroup = ParquetWriter['row_groups'][number];
type PageIndexes = ParquetWriter['pendingIndexes'][number];

export interface RecordFailure {
  /** The record's index in the row group's input. */
  readonly index: number;
  readonly message: string;
}

export interface EncodedRowGroup {
  /** The row group's column chunks, as though they began at file offset 4. */
  readonly bytes: Uint8Array;
  /** Absent when no record of the input could be converted. */
  readonly rowGroup: RowGroup | undefined;
  /** Its column chunks' page indexes (their `chunk` is the same object as in `rowGroup`). */
  readonly indexes: PageIndexes[];
  readonly failures: RecordFailure[];
}

const decoder = new TextDecoder('utf-8', { fatal: true });
// Synchronous gzip is right here: this runs on a conversion thread, never on the event loop.
const compressors = { GZIP: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)), SNAPPY: snappyCompress };

function writerFor(spec: SessionSpec, writer: ByteWriter): ParquetWriter {
  return new ParquetWriter({ writer, schema: parquetSchema(spec.columns) as never, codec: spec.compression, compressors, createdBy: 'firehose (hyparquet-writer)' });
}

/**
 * Reads and coerces the records (`ends[i]` is where record i ends in `payload`) and encodes their
 * rows. Records are read from their bytes into the columns' stores; one the reader declines is
 * decoded the general way (and named, if it is malformed).
 */
export function encodeRowGroup(spec: SessionSpec, payload: Uint8Array, ends: Uint32Array): EncodedRowGroup {
  const failures: RecordFailure[] = [];
  const columns = new RowGroupColumns(spec);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    if (!columns.read(payload, start, end)) {
      try {
        columns.append(rowOf(parseJsonExact(decoder.decode(payload.subarray(start, end))), spec.columns, spec.deserializer));
      } catch (err) {
        const message = err instanceof CoercionError ? err.message : err instanceof SyntaxError ? `the record is not JSON: ${err.message}` : `the record is not UTF-8 JSON: ${(err as Error).message}`;
        failures.push({ index: i, message });
      }
    }
    start = end;
  }
  const rows = columns.rows;
  if (rows === 0) return { bytes: new Uint8Array(0), rowGroup: undefined, indexes: [], failures };
  // A column a row was half kept in would misplace every value after it: fail the row group
  // (and its file, with this reason) rather than write one.
  for (const top of columns.tops) {
    const held = top.leaves ? top.leaves.map((leaf) => leaf.rows) : [top.values.length];
    if (held.some((n) => n !== rows)) throw new Error(`column ${top.column.name} holds ${held.join('/')} rows of ${rows}`);
  }
  const writer = new ByteWriter(Math.max(1 << 16, payload.length >> 1));
  const parquet = writerFor(spec, writer);
  const compress = spec.compression === 'UNCOMPRESSED' ? undefined : (compressors as Record<string, (bytes: Uint8Array) => Uint8Array>)[spec.compression];
  if (spec.compression !== 'UNCOMPRESSED' && !compress) throw new Error(`parquet no compressor for codec ${spec.compression}`);
  const settings = { codec: spec.compression, compress, pageSizeBytes: spec.pageSizeBytes };
  const chunks: ColumnChunk[] = [];
  const indexes: PageIndexes[] = [];
  let uncompressed = 0n;
  // Column chunks in schema order: the leaves written here, the other columns by hyparquet-writer.
  for (const top of columns.tops) {
    if (top.leaves) {
      for (const leaf of top.leaves) {
        const { chunk, offsetIndex } = leaf.write(writer, settings);
        chunks.push(chunk);
        indexes.push({ chunk, ...(offsetIndex ? { offsetIndex } : {}) });
      }
      continue;
    }
    const c = top.column;
    parquet.write({
      // EnableDictionaryCompression false: PLAIN pages. (hyparquet-writer's `dictionarySize: 0`
      // reads as "no cap".) Booleans keep the writer's own choice, RLE, which is not a dictionary.
      columnData: [{ name: c.name, data: top.values as never, ...(spec.enableDictionaryCompression || c.type.kind === 'boolean' ? {} : { encoding: 'PLAIN' as const }) }],
      rowGroupSize: rows,
      pageSize: spec.pageSizeBytes,
    });
    chunks.push(...parquet.row_groups.pop()!.columns);
    indexes.push(...parquet.pendingIndexes.splice(0));
  }
  for (const chunk of chunks) uncompressed += chunk.meta_data!.total_uncompressed_size;
  const rowGroup: RowGroup = { columns: chunks, total_byte_size: uncompressed, num_rows: BigInt(rows), total_compressed_size: BigInt(writer.offset - PARQUET_MAGIC.length) };
  // Copied out at its exact size: the writer's buffer is up to twice as large, and the file holds
  // its row groups until it is delivered.
  const bytes = new Uint8Array(writer.buffer.slice(PARQUET_MAGIC.length, writer.index));
  return { bytes, rowGroup, indexes, failures };
}

/** Moves a row group encoded as though it began at offset 4 to where it begins in the file. */
export function placeRowGroup(group: EncodedRowGroup, fileOffset: number): void {
  const shift = BigInt(fileOffset - PARQUET_MAGIC.length);
  if (shift === 0n || !group.rowGroup) return;
  for (const chunk of group.rowGroup.columns) {
    chunk.file_offset += shift;
    const meta = chunk.meta_data;
    if (meta) {
      meta.data_page_offset += shift;
      if (meta.dictionary_page_offset !== undefined) meta.dictionary_page_offset += shift;
      if (meta.index_page_offset !== undefined) meta.index_page_offset += shift;
    }
  }
  for (const { offsetIndex } of group.indexes) {
    for (const page of offsetIndex?.page_locations ?? []) page.offset += shift;
  }
}

/** The file's page indexes, metadata and closing magic, written after `fileOffset` bytes of header and placed row groups. */
export function parquetFooter(spec: SessionSpec, groups: readonly EncodedRowGroup[], fileOffset: number): Uint8Array {
  const writer = new ByteWriter(1 << 16);
  const parquet = writerFor(spec, writer);
  // The writer wrote its header; the footer's offsets count from where the row groups end.
  writer.index = 0;
  writer.offset = fileOffset;
  for (const group of groups) {
    if (!group.rowGroup) continue;
    parquet.row_groups.push(group.rowGroup);
    parquet.num_rows += group.rowGroup.num_rows;
    parquet.pendingIndexes.push(...group.indexes);
  }
  parquet.finish();
  return new Uint8Array(writer.buffer, 0, writer.index);
}
