import type { Segment } from './ack.js';
import type { FlushReason } from './buffer.js';

/** One record as a source hands it on. `data` is passed through untouched unless a stage needs it. */
export interface SourceRecord {
  readonly data: Buffer;
  readonly partitionKey: string;
  /**
   * Where the record was first read: the shard (partition of the stream), its sequence number and
   * its position inside an aggregate. A record redriven or replayed keeps them, so what derives
   * from them (document ids, dead-letter ids) stays stable.
   */
  readonly shardId: string;
  readonly sequenceNumber: string;
  /** Position inside a KPL-aggregated record; 0 for a plain record. */
  readonly subSequenceNumber: number;
  /** When the stream accepted the record, epoch milliseconds. */
  readonly approximateArrivalTimestamp: number;
  /** The record's position in the acknowledgement model of the source now handing it on. */
  readonly segment: Segment;
  /** Only on records entering after the transform: the partition they were bound for. */
  readonly partitionKeys?: Readonly<Record<string, string>>;
}

/**
 * Where records enter a delivery stream: before its transform (as read from a stream), or after it
 * (a redrive of records the destination refused: they were transformed already).
 */
export type Entry = 'before-transform' | 'after-transform';

/** Where a source hands records on. It must take them synchronously; backpressure is the budget's job. */
export interface RecordSink {
  accept(records: readonly SourceRecord[], entry?: Entry): void;
  /** Seals what is buffered now (a shard's lease is being handed over: its records should reach their ends soon). */
  flush(reason: FlushReason): void;
}

/**
 * A source of records: a stream's shards, the dead-letter queue, an archive. It owns its
 * positions: their order, where they are committed, and what a committed position means (a
 * checkpoint moved, a dead letter removed).
 */
export interface Source {
  /** What is read, as its positions are stored under (`kinesis/us-east-1/clicks`). */
  readonly identity: string;
  /** Reads until stop() or until there is nothing more; resolves once no more records will be handed on. */
  run(sink: RecordSink): Promise<void>;
  stop(): void;
  /** Segments handed on whose records have not all reached an end. */
  readonly outstandingSegments: number;
  /**
   * Called once run() resolved and every record handed on reached an end or was given up: commits
   * what remains to commit. Resolves true when every position that reached an end is committed.
   */
  close(): Promise<boolean>;
  /**
   * Of these records, those read under a lease this worker no longer holds at the epoch they were
   * read under: what they would still write (a DLQ park) is fenced off. Sources without leases omit it.
   */
  disowned?(records: readonly SourceRecord[]): Promise<ReadonlySet<SourceRecord>>;
  /** What the admin endpoint shows of it. */
  status(): Readonly<Record<string, unknown>>;
}
