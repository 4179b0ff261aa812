import type { Encoding } from './codecs.js';
import type { SessionSpec } from './conversion/types.js';
import type { ProcessingSettings } from './transform/types.js';

/** What a buffer holds for one destination, as the destination's configuration decides it. */
export interface BufferSettings {
  readonly sizeBytes: number;
  readonly intervalMs: number;
  /** How sealed buffers are encoded (PARQUET with format conversion). */
  readonly encoding: Encoding;
  readonly appendNewlineDelimiter: boolean;
  /** Seal at this many records (an HTTP request carries at most 10,000). */
  readonly maxRecords?: number;
  /**
   * Exactly-once: a buffer per shard, cut by size only where a Kinesis record begins (a KPL
   * aggregate is never split, so a batch ends on a whole sequence number), and each sealed batch
   * carries its exact position range.
   */
  readonly perShard?: boolean;
  /** Collect each batch's manifest (the S3 archive's, read back by a replay). */
  readonly manifest?: boolean;
  /**
   * A replay: each batch's id (an HTTP request id, an S3 object's name) derived from the source
   * positions it holds, so replaying the same records again sends the same ids.
   */
  readonly positionalIds?: boolean;
}

/** What the engine runs in front of a destination, as its configuration says. */
export interface PipelineSettings {
  readonly buffer: BufferSettings;
  /** How error-output objects are encoded (they hold JSON lines, whatever the destination holds). */
  readonly errorOutputEncoding: Exclude<Encoding, 'PARQUET'>;
  /** processingConfiguration: a transform module and/or a MetadataExtraction query. */
  readonly processing?: ProcessingSettings | undefined;
  /** Dynamic partitioning: the partition keys each record must have (from the query or the transform). */
  readonly partitioning?: { readonly queryKeys: readonly string[]; readonly lambdaKeys: readonly string[] } | undefined;
  /**
   * Exactly-once objects: each batch's range is recorded (fenced) before upload and committed
   * after; `configHash` names the configuration the batch was formed under, so a re-formation
   * under another one is detected.
   */
  readonly exactlyOnce?: { readonly configHash: string } | undefined;
  /** Record format conversion to Parquet: the columns and writer settings. */
  readonly conversion?: SessionSpec | undefined;
  /**
   * How long a batch is retried before its records end in the error output (as `errorOutputType`)
   * or the DLQ; undefined: retried until delivered (S3, whose error output is itself).
   */
  readonly retry?: { readonly durationMs: number; readonly errorOutputType: 'http-endpoint-failed' | 'AmazonOpenSearchService-failed' } | undefined;
  /**
   * Source record backup (S3BackupMode Enabled): every record, as read and before any transform, is
   * also written to a backup bucket buffered like this; its position is checkpointed only once the
   * copy is written too.
   */
  readonly sourceBackup?: { readonly buffer: BufferSettings } | undefined;
  /** Batches are whole records, kept for the destination (the HTTP body is built from them). */
  readonly recordOriented?: boolean;
}
