import type { ManifestBuilder } from '../archive/manifest.js';
import type { Acknowledgements } from '../ack.js';
import { DEFAULT_CHUNK_BYTES as CHUNK_BYTES, type Encoder } from '../encoder.js';
import type { SourceRecord } from '../records.js';
import type { ConversionPool } from './pool.js';
import type { SessionSpec } from './types.js';

/** SucceedConversion / FailedConversion, counted as each chunk comes back from its thread. */
export interface ConversionCounts {
  succeededConversionRecords: number;
  succeededConversionBytes: number;
  failedConversionRecords: number;
  failedConversionBytes: number;
}


/**
 * Encodes a buffer's records as one Parquet file while they arrive: records are copied into
 * chunks that go to a conversion thread as they fill (both cores convert while reading goes on).
 * A record the thread cannot convert comes back by index: its position moves from this object's
 * acknowledgements to the error output's before the object is delivered, so it ends exactly once.
 */
export class ParquetEncoder implements Encoder {
  private readonly session: number;
  private chunk: Uint8Array;
  private used = 0;
  private ends: number[] = [];
  private chunkRecords: SourceRecord[] = [];
  /** Per chunk sent: its records, and the index of its first among all appended. */
  private readonly inFlight = new Map<number, { records: SourceRecord[]; first: number }>();
  private appended = 0;
  private nextChunk = 0;
  private finishing: { resolve(parts: Buffer[]): void; reject(err: Error): void } | undefined;
  private result: { parts: Uint8Array[] } | { error: string } | undefined;

  constructor(
    private readonly pool: ConversionPool,
    spec: SessionSpec,
    private readonly acks: Acknowledgements,
    private readonly onFailed: (record: SourceRecord, message: string) => void,
    private readonly counts?: ConversionCounts,
    /** The buffer's manifest: a record that cannot be converted is not a row of the file. */
    private readonly manifest?: ManifestBuilder,
  ) {
    this.chunk = new Uint8Array(CHUNK_BYTES);
    this.session = pool.open(spec, {
      chunkDone: (chunk, failures) => {
        const { records, first } = this.inFlight.get(chunk)!;
        this.inFlight.delete(chunk);
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
        this.settle();
      },
      finished: (parts) => {
        this.result = { parts };
        this.settle();
      },
      failed: (message) => {
        this.result = { error: message };
        this.settle();
      },
    });
  }

  append(record: SourceRecord): void {
    const data = record.data;
    if (this.used + data.length > this.chunk.length && this.ends.length > 0) this.send();
    if (data.length > this.chunk.length) this.chunk = new Uint8Array(data.length);
    this.chunk.set(data, this.used);
    this.used += data.length;
    this.ends.push(this.used);
    this.chunkRecords.push(record);
    this.appended++;
  }

  finish(): Promise<Buffer[]> {
    if (this.ends.length > 0) this.send();
    this.pool.finish(this.session);
    return new Promise((resolve, reject) => {
      this.finishing = { resolve, reject };
      this.settle();
    });
  }

  private send(): void {
    const id = this.nextChunk++;
    this.inFlight.set(id, { records: this.chunkRecords, first: this.appended - this.chunkRecords.length });
    this.pool.chunk(this.session, id, this.chunk.subarray(0, this.used), Uint32Array.from(this.ends));
    this.chunk = new Uint8Array(CHUNK_BYTES);
    this.used = 0;
    this.ends = [];
    this.chunkRecords = [];
  }

  /** Resolves finish() once every chunk's failures are accounted for and the file is complete. */
  private settle(): void {
    if (!this.finishing || !this.result) return;
    if ('error' in this.result) {
      this.finishing.reject(new Error(`Parquet conversion failed: ${this.result.error}`));
      return;
    }
    if (this.inFlight.size > 0) return;
    this.finishing.resolve(this.result.parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  }
}
