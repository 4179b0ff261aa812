import type { z } from 'zod';
import type { Logger } from './log.js';

export type CompressionFormat = 'UNCOMPRESSED' | 'GZIP';

/** What a buffer holds for one destination, as the destination's configuration decides it. */
export interface BufferSettings {
  readonly sizeBytes: number;
  readonly intervalMs: number;
  readonly compression: CompressionFormat;
  readonly appendNewlineDelimiter: boolean;
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
}

export interface DeliveryReceipt {
  /** Where the batch went, for logs and the dev mode (an S3 key, a URL…). */
  readonly location: string;
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
  readonly log: Logger;
}

/** A destination as the YAML names it: its configuration key, schema, buffer rule and factory. */
export interface DestinationPlugin<Config> {
  readonly configKey: string;
  readonly schema: z.ZodType<Config, unknown>;
  bufferSettings(config: Config): BufferSettings;
  create(config: Config, context: DestinationContext): Destination;
}
