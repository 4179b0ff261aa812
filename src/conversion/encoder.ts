import type { ManifestBuilder } from '../archive/manifest.js';
import type { Acknowledgements } from '../ack.js';
import type { Holding } from '../buffer.js';
import type { Encoder } from '../encoder.js';
import type { SourceRecord } from '../records.js';
import type { ConversionPool } from './pool.js';
import { PARQUET_MAGIC, parquetFooter, placeRowGroup, type EncodedRowGroup } from './row-group.js';
import type { SessionSpec } from './types.js';

/** SucceedConversion / FailedConversion, counted as each row group comes back from its thread. */
export interface ConversionCounts {
  succeededConversionRecords: number;
  succeededConversionBytes: number;
  failedConversionRecords: number;
  failedConversionBytes: number;
}

/** A buffer's first chunk; it doubles up to a row group's input as the buffer fills (small buffers and many partitions stay small). */
const FIRST_CHUNK_BYTES = 64 * 1024;

/**
 * Encodes a buffer's records as one Parquet file while they arrive: every `rowGroupBytes` of
 * records goes to the conversion threads as one row group, converted on whichever thread is free
 * while reading goes on; finish() lays the row groups out in order and writes the footer. A record
 * a thread cannot convert comes back by index: its position moves from this object's
 * acknowledgements to the error output's before the object is delivered, so it ends exactly once.
 * Memory holds a row group's records until it is encoded, then only its encoded bytes: the budget
 * is told both (readers wait while the threads are behind, as they do for gzip).
 */
export class ParquetEncoder implements Encoder {
  private chunk: Uint8Array;
  private used = 0;
  private ends: number[] = [];
  private chunkRecords: SourceRecord[] = [];
  /** The row groups sent, in file order. */
  private readonly groups: Array<Promise<EncodedRowGroup>> = [];
  private appended = 0;

  constructor(
    private readonly pool: ConversionPool,
    private readonly spec: SessionSpec,
    private readonly acks: Acknowledgements,
    private readonly holding: Holding,
    private readonly onFailed: (record: SourceRecord, message: string) => void,
    private readonly counts?: ConversionCounts,
    /** The buffer's manifest: a record that cannot be converted is not a row of the file. */
    private readonly manifest?: ManifestBuilder,
  ) {
    this.chunk = new Uint8Array(Math.min(FIRST_CHUNK_BYTES, spec.rowGroupBytes));
  }

  append(record: SourceRecord): void {
    const data = record.data;
    if (this.used + data.length > this.chunk.length) {
      if (this.ends.length > 0 && this.chunk.length >= this.spec.rowGroupBytes) this.send();
      // A first chunk growing to the row group's size, or a record larger than a row group.
      if (this.used + data.length > this.chunk.length) this.grow(this.used + data.length);
    }
    this.chunk.set(data, this.used);
    this.used += data.length;
    this.ends.push(this.used);
    this.chunkRecords.push(record);
    this.appended++;
  }

  async finish(): Promise<Buffer[]> {
    if (this.ends.length > 0) this.send();
    let groups: EncodedRowGroup[];
    try {
      groups = await Promise.all(this.groups);
    } catch (err) {
      throw new Error(`Parquet conversion failed: ${(err as Error).message}`, { cause: err });
    }
    const written = groups.filter((g) => g.rowGroup);
    if (written.length === 0) return [];
    const parts: Buffer[] = [Buffer.from(PARQUET_MAGIC)];
    let offset = PARQUET_MAGIC.length;
    for (const group of written) {
      placeRowGroup(group, offset);
      parts.push(Buffer.from(group.bytes.buffer, group.bytes.byteOffset, group.bytes.byteLength));
      offset += group.bytes.byteLength;
    }
    const footer = parquetFooter(this.spec, written, offset);
    parts.push(Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength));
    return parts;
  }

  private grow(needed: number): void {
    const bigger = new Uint8Array(Math.max(needed, Math.min(this.spec.rowGroupBytes, this.chunk.length * 2)));
    bigger.set(this.chunk.subarray(0, this.used));
    this.chunk = bigger;
  }

  private send(): void {
    const records = this.chunkRecords;
    const first = this.appended - records.length;
    const raw = this.used;
    const group = this.pool.encode(this.spec, this.chunk.subarray(0, raw), Uint32Array.from(this.ends));
    this.holding.encoding(raw);
    // Failures are accounted for as each row group comes back, whatever the order; a failed one
    // fails the file in finish() (until then, its rejection is not an unhandled one).
    const accounted = group.then(
      (encoded) => {
        this.holding.encoded(raw, encoded.bytes.byteLength);
        this.converted(records, first, encoded);
        return encoded;
      },
      (err: unknown) => {
        this.holding.encoded(raw, raw);
        throw err;
      },
    );
    accounted.catch(() => undefined);
    this.groups.push(accounted);
    // A buffer that filled one row group is likely to fill the next.
    this.chunk = new Uint8Array(this.spec.rowGroupBytes);
    this.used = 0;
    this.ends = [];
    this.chunkRecords = [];
  }

  private converted(records: readonly SourceRecord[], first: number, { failures }: EncodedRowGroup): void {
    let failedBytes = 0;
    for (const { index, message } of failures) {
      const record = records[index]!;
      failedBytes += record.data.length;
      this.manifest?.exclude(first + index);
      this.acks.remove(record.segment);
      this.onFailed(record, message);
    }
    if (this.counts) {
      let bytes = 0;
      for (const record of records) bytes += record.data.length;
      this.counts.succeededConversionRecords += records.length - failures.length;
      this.counts.succeededConversionBytes += bytes - failedBytes;
      this.counts.failedConversionRecords += failures.length;
      this.counts.failedConversionBytes += failedBytes;
    }
  }
}
