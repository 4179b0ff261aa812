import type { z } from 'zod';
import type { Logger } from './log.js';
import type { ProcessingSettings } from './transform/config.js';
import type { SessionSpec } from './conversion/worker.js';

export type CompressionFormat = 'UNCOMPRESSED' | 'GZIP';

/** What a buffer holds for one destination, as the destination's configuration decides it. */
export interface BufferSettings {
  readonly sizeBytes: number;
  readonly intervalMs: number;
  readonly compression: CompressionFormat;
  readonly appendNewlineDelimiter: boolean;
  /** Seal at this many records (an HTTP request carries at most 10,000). */
  readonly maxRecords?: number;
}

/** A sealed buffer, encoded: what a destination is asked to deliver. */
export interface EncodedBatch {
  /** Stable across retries, so a retried delivery overwrites rather than duplicates. */
  readonly id: string;
  readonly deliveryStreamName: string;
  readonly records: number;
  /** Bytes before compression (what the size hint counts). */
  readonly rawBytes: number;
  readonly compression: CompressionFormat;
  /** The encoded body as a list of chunks; with GZIP each chunk is one gzip member (RFC 1952). */
  readonly chunks: readonly Buffer[];
  readonly encodedBytes: number;
  /** Arrival time of the oldest record in the batch (Firehose names objects by it). */
  readonly oldestArrivalTimestamp: number;
  /** With dynamic partitioning: the partition every record of the batch belongs to. */
  readonly partitionKeys?: Readonly<Record<string, string>>;
  /** Set for the error output: processing-failed, partitioning-failed, … */
  readonly errorOutputType?: string;
  /** For record-oriented destinations (HTTP endpoints, OpenSearch): each record's bytes, in order. */
  readonly recordData?: readonly Buffer[];
  /** …and where each came from (OpenSearch derives document ids from it). */
  readonly recordSources?: ReadonlyArray<{ readonly shardId: string; readonly sequenceNumber: string; readonly subSequenceNumber: number; readonly arrival: number }>;
}

/** A record of the batch that the destination did not take (the others were delivered). */
export interface ItemFailure {
  /** Index into the batch's recordData. */
  readonly index: number;
  readonly retryable: boolean;
  readonly code: string;
  readonly message: string;
  /** Written into the record's error-output line (esDocumentId, esIndexName, …). */
  readonly details?: Readonly<Record<string, string>>;
}

/**
 * A failed delivery. Retryable ones are retried within the destination's retry duration; the
 * records of a batch that fails for good go to the error output.
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
  /** Where the batch went, for logs and the dev mode (an S3 key, a URL…). */
  readonly location: string;
  /** Per-record failures of a record-oriented delivery; absent or empty: every record was delivered. */
  readonly failed?: readonly ItemFailure[];
}

/**
 * A destination delivers one batch per call, all or nothing; it throws on failure and the engine
 * owns retries, backoff and acknowledgements, so every destination gets them the same way.
 */
export interface Destination {
  deliver(batch: EncodedBatch, signal: AbortSignal): Promise<DeliveryReceipt>;
  close(): Promise<void>;
}

export interface DestinationContext {
  readonly deliveryStreamName: string;
  readonly deliveryStreamArn: string;
  readonly log: Logger;
}

/** What the engine runs in front of a destination, as its configuration says. */
export interface PipelineSettings {
  readonly buffer: BufferSettings;
  /** processingConfiguration: a transform module and/or a MetadataExtraction query. */
  readonly processing?: ProcessingSettings | undefined;
  /** Dynamic partitioning: the partition keys each record must have (from the query or the transform). */
  readonly partitioning?: { readonly queryKeys: readonly string[]; readonly lambdaKeys: readonly string[] } | undefined;
  /** Record format conversion to Parquet: the columns and writer settings. */
  readonly conversion?: SessionSpec | undefined;
  /**
   * How long a batch is retried before its records go to the error output (as `errorOutputType`);
   * undefined: retried until delivered (S3, whose error output is itself).
   */
  readonly retry?: { readonly durationMs: number; readonly errorOutputType: string } | undefined;
  /** Batches are whole records, kept for the destination (the HTTP body is built from them). */
  readonly recordOriented?: boolean;
}

/** A destination as the YAML names it: its configuration key, schema, pipeline settings and factory. */
export interface DestinationPlugin<Config> {
  readonly configKey: string;
  readonly schema: z.ZodType<Config, unknown>;
  pipeline(config: Config): PipelineSettings;
  create(config: Config, context: DestinationContext): Destination;
  /** Where the error output goes when it is not the destination itself (an S3 backup bucket). */
  createErrorOutput?(config: Config, context: DestinationContext): Destination;
}
