import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { ByteBudget } from './budget.js';
import type { Logger } from './log.js';
import type { Source } from './records.js';

export type { Source };

/** What every source is given. */
export interface SourceContext {
  readonly deliveryStreamName: string;
  /** Where its positions are committed. */
  readonly redis: Redis;
  /** The process's byte budget: take before reading, give back as records reach an end. */
  readonly budget: ByteBudget;
  readonly checkpointIntervalMs: number;
  /** This worker's name in the fleet: its leases' owner (`--worker-id`, by default host:pid). */
  readonly workerId: string;
  /** A lease's lifetime; renewed every third of it. */
  readonly leaseDurationMs: number;
  readonly log: Logger;
}

/** What a transform's event says of the source, as Firehose's Lambda contract has it. */
export interface SourceEventFields {
  /** Top-level fields of the event (`sourceKinesisStreamArn`). */
  readonly event: Readonly<Record<string, string>>;
  /** The key under which each event record carries its shard, partition key and sequence numbers. */
  readonly recordMetadataKey?: string;
}

/** A source as the YAML names it inside a delivery stream: its configuration key, schema and factory. */
export interface SourcePlugin<Config> {
  readonly configKey: string;
  readonly schema: z.ZodType<Config, unknown>;
  /** What is read, stably named: checkpoints belong to it (a renamed stream starts afresh). */
  identity(config: Config): string;
  /** The AWS region the delivery stream runs in, as the source says (names its ARN). */
  region(config: Config): string;
  eventFields(config: Config): SourceEventFields;
  create(config: Config, context: SourceContext): Source;
}
