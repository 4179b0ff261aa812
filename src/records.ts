import type { Segment, ShardProgress } from './ack.js';

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

/** Where a record is: its Kinesis record's sequence number, and its place in a KPL aggregate. */
export interface RecordPosition {
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
}

/** One shard's records from first to last, as read: what an exactly-once batch holds, and its intent records. */
export interface ShardRange {
  readonly shardId: string;
  readonly first: RecordPosition & { readonly arrival: number };
  readonly last: RecordPosition;
}

/** A per-shard batch's range, with the shard's progress the records were read under (one lease, one epoch). */
export interface BatchRange extends ShardRange {
  readonly progress: ShardProgress | undefined;
}

/** Why a buffer was sealed. */
export type FlushReason = 'size' | 'interval' | 'shutdown' | 'partition-limit' | 'backpressure' | 'hand-off' | 'shard-end' | 're-formation';

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
  /** Seals what is buffered of one shard (its lease moves); false when the sink does not buffer by shard. */
  sealShard?(shardId: string, reason: FlushReason): boolean;
  /**
   * Exactly-once: the shard's next batch must be exactly the range an earlier attempt recorded
   * (a crash or a lease move came between its intent and its commit): cut it after `last`.
   */
  reform?(intent: OpenIntent): void;
}

/** A batch recorded before its upload and not committed: re-formed from the same records, it is the same object. */
export interface OpenIntent {
  readonly shardId: string;
  readonly last: RecordPosition;
  readonly key: string;
  readonly configHash: string;
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
  /**
   * Exactly-once: records a per-shard batch's intent (its range, object key and configuration) under
   * the lease its records were read under, before its upload. "fenced": the lease is gone — the
   * batch must not be written; its new owner re-forms it.
   */
  recordIntent?(range: BatchRange, key: string, configHash: string): Promise<'recorded' | 'fenced'>;
  /** Exactly-once: after the upload, the checkpoint moves to the batch's last record and its intent goes, fenced. */
  commitBatch?(range: BatchRange): Promise<'committed' | 'fenced'>;
  /** What the admin endpoint shows of it. */
  status(): Readonly<Record<string, unknown>>;
  /**
   * Readiness: resolves once what it reads from answered (throws with the reason when not). A
   * source that reads nothing remote omits it.
   */
  probe?(signal: AbortSignal): Promise<void>;
}
