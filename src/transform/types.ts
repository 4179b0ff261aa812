import type { CompiledQuery } from '../partitioning/query.js';

/** A transform as the pipeline runs it: the module and Firehose's processor parameters. */
export interface TransformSettings {
  readonly module: string;
  readonly numberOfRetries: number;
  readonly bufferSizeBytes: number;
  readonly bufferIntervalMs: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly environment: Readonly<Record<string, string>>;
}

export interface ProcessingSettings {
  /** A Firehose Lambda processor, run as a local module. */
  readonly transform?: TransformSettings;
  readonly metadataExtraction?: CompiledQuery;
}

