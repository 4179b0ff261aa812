import type { ManifestBuilder } from './archive/manifest.js';
import type { z } from 'zod';
import type { Encoding } from './codecs.js';
import type { FailureReason } from './failure.js';
import type { Logger } from './log.js';
import type { PipelineSettings } from './pipeline-settings.js';
import type { ShardRange } from './records.js';

export type { PipelineSettings };

/** Where a record in a batch came from (OpenSearch derives document ids from it). */
export interface RecordOrigin {
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
  readonly arrival: number;
}

/** A sealed buffer, encoded: what a destination is asked to deliver. */
export interface EncodedBatch {
  /** Stable across retries, so a retried delivery overwrites rather than duplicates. */
  readonly id: string;
  readonly deliveryStreamName: string;
  readonly records: number;
  /** Bytes before encoding (what the size hint counts). */
  readonly rawBytes: number;
  /** What the chunks hold; names and labels the object (codecs.ts). */
  readonly encoding: Encoding;
  /** The encoded body as a list of chunks; with GZIP each chunk is one gzip member (RFC 1952). */
  readonly chunks: readonly Buffer[];
  readonly encodedBytes: number;
  /** Arrival time of the oldest record in the batch (Firehose names objects by it). */
  readonly oldestArrivalTimestamp: number;
  /** With dynamic partitioning: the partition every record of the batch belongs to. */
  readonly partitionKeys?: Readonly<Record<string, string>>;
  /** Set for the error output: processing-failed, partitioning-failed, … */
  readonly errorOutputType?: string;
  /** For record-oriented destinations (HTTP endpoints, OpenSearch): each record's bytes, in order… */
  readonly recordData?: readonly Buffer[];
  /** …and where each came from. */
  readonly recordSources?: readonly RecordOrigin[];
  /**
   * Exactly-once: the one shard's records the batch holds, first to last, and the configuration it
   * was formed under. The object is named from them and written create-only.
   */
  readonly exactlyOnce?: { readonly range: ShardRange; readonly configHash: string };
  /** The records, field by field, for the object's manifest (when the destination writes one). */
  readonly manifest?: ManifestBuilder;
}

/** What an exactly-once upload did: wrote the object, or found it written (by an earlier attempt or owner) and adopted it. */
export type CreateOnlyOutcome = 'created' | 'adopted';

/** A record of the batch that the destination did not take (the others were delivered). */
export interface ItemFailure extends FailureReason {
  /** Index into the batch's recordData. */
  readonly index: number;
  readonly retryable: boolean;
}

/**
 * A failed delivery. Retryable ones (throttling, 5xx, connection refused or reset, timeouts) are
 * retried within the destination's retry duration; a permanent one ends the batch's records in the
 * error output or the DLQ at once, with its code.
 */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export interface DeliveryReceipt {
  /** Exactly-once: whether the object was written now or already there. */
  readonly createOnly?: CreateOnlyOutcome;
  /** Where the batch went, for logs and the dev mode (an S3 key, a URL…). */
  readonly location: string;
  /** Per-record failures of a record-oriented delivery; absent or empty: every record was delivered. */
  readonly failed?: readonly ItemFailure[];
}

/**
 * A destination delivers one batch per call; it throws a DeliveryError saying whether the failure
 * is retryable, and the engine owns retries, backoff, error output, DLQ and acknowledgements, so
 * every destination gets them the same way.
 */
export interface Destination {
  deliver(batch: EncodedBatch, signal: AbortSignal): Promise<DeliveryReceipt>;
  /**
   * Why a partition's records could never be delivered (its S3 key would be too long, say), or
   * undefined. Asked before a partition's first record is buffered, so a bad key ends its records
   * as partitioning-failed instead of failing a batch without end.
   */
  checkPartition?(partitionKeys: Readonly<Record<string, string>>): string | undefined;
  /** Exactly-once: the object key a batch will be written under (recorded in its intent before upload). */
  objectKeyFor?(batch: EncodedBatch): string;
  /**
   * Readiness: resolves once the destination answered a cheap request (throws with the reason when
   * it did not). Any answer counts but one refusing the configured credentials.
   */
  probe?(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface DestinationContext {
  readonly deliveryStreamName: string;
  readonly deliveryStreamArn: string;
  readonly log: Logger;
}

/** A destination as the YAML names it: its configuration key, schema, pipeline settings and factory. */
export interface DestinationPlugin<Config> {
  readonly configKey: string;
  /** Its `destination` label in /metrics (Firehose's DeliveryToS3, DeliveryToHttpEndpoint, …). */
  readonly metricLabel: string;
  readonly schema: z.ZodType<Config, unknown>;
  pipeline(config: Config): PipelineSettings;
  create(config: Config, context: DestinationContext): Destination;
  /** Where the error output goes when it is not the destination itself (an S3 backup bucket). */
  createErrorOutput?(config: Config, context: DestinationContext): Destination;
  /** Where source record backups go (S3BackupMode Enabled), when the configuration asks for them. */
  createSourceBackup?(config: Config, context: DestinationContext): Destination | undefined;
}
