import { availableParallelism, hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { ByteBudget } from './budget.js';
import type { Clock } from './clock.js';
import type { DeliveryStreamConfig, ServiceConfig } from './config.js';
import { ConversionPool } from './conversion/pool.js';
import { DeliveryStream, type DeliveredEvent } from './delivery-stream.js';
import { DeadLetterQueue } from './dlq.js';
import type { Logger } from './log.js';
import type { Source } from './records.js';
import { TransformPool } from './transform/pool.js';
import { MiB } from './units.js';


/** What the default budget keeps for GetRecords responses being read (a few 10 MB responses). */
const READS_IN_FLIGHT_BYTES = 64 * MiB;

/** What the delivery streams of one process share: connections, the byte budget, the conversion threads. */
/** A worker's name unless `--worker-id` gives one: unique per process on a host. */
export function defaultWorkerId(): string {
  return `${hostname()}:${process.pid}`;
}

export class SharedResources {
  readonly budget: ByteBudget;
  readonly deadLetterQueues: DeadLetterQueue[] = [];
  private conversions: ConversionPool | undefined;
  private readonly pools: Array<{ close(): Promise<void> }> = [];

  constructor(
    readonly config: ServiceConfig,
    streams: readonly DeliveryStreamConfig[],
    /** Checkpoints and other short commands. */
    readonly redis: Redis,
    /** BullMQ's connection (retries forever), when the DLQ is on. */
    readonly dlqRedis: Redis | undefined,
    readonly clock: Clock,
    readonly log: Logger,
    /** This worker's name in the fleet. */
    readonly workerId: string = defaultWorkerId(),
  ) {
    let bufferBytes = 0;
    for (const s of streams) bufferBytes += s.destination.plugin.pipeline(s.destination.config).buffer.sizeBytes;
    // Twice the buffers (one filling while the previous one is delivered), and room for reads in flight.
    this.budget = new ByteBudget((config.runtime.memoryBudgetInMBs ?? 0) * MiB || 2 * bufferBytes + READS_IN_FLIGHT_BYTES);
  }

  /** One set of conversion threads for the process (both cores), shared by every converting stream. */
  conversionPool(): ConversionPool {
    if (!this.conversions) {
      this.conversions = new ConversionPool(Math.max(1, Math.min(4, availableParallelism())), this.log);
      this.conversions.start();
      this.pools.push(this.conversions);
    }
    return this.conversions;
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
    await Promise.all(this.deadLetterQueues.map((q) => q.close()));
  }

  deadLetterQueue(deliveryStreamName: string): DeadLetterQueue | undefined {
    if (!this.dlqRedis) return undefined;
    const queue = new DeadLetterQueue(this.dlqRedis, deliveryStreamName, this.config.runtime.deadLetterQueue.maxSizeInMBs * MiB);
    this.deadLetterQueues.push(queue);
    return queue;
  }

  track(pool: { close(): Promise<void> }): void {
    this.pools.push(pool);
  }
}

export function deliveryStreamArn(streamConfig: DeliveryStreamConfig): string {
  const region = streamConfig.source.plugin.region(streamConfig.source.config);
  return `arn:aws:firehose:${region}:000000000000:deliverystream/${streamConfig.deliveryStreamName}`;
}

/**
 * Builds one delivery stream from its configuration, reading the given source (its configured one
 * when none is given: a redrive or a replay passes its own). Every path a record takes is this one.
 */
export async function assembleDeliveryStream(
  streamConfig: DeliveryStreamConfig,
  shared: SharedResources,
  options: { source?: (log: Logger) => Source; onDelivered?: ((event: DeliveredEvent) => void) | undefined } = {},
): Promise<DeliveryStream> {
  const { config, log: rootLog, clock } = shared;
  const name = streamConfig.deliveryStreamName;
  const log = rootLog.child({ deliveryStream: name });
  const { plugin, config: destinationConfig } = streamConfig.destination;
  const pipeline = plugin.pipeline(destinationConfig);
  const sourcePlugin = streamConfig.source.plugin;
  const source =
    options.source?.(log) ??
    sourcePlugin.create(streamConfig.source.config, {
      deliveryStreamName: name,
      redis: shared.redis,
      budget: shared.budget,
      checkpointIntervalMs: config.runtime.checkpointIntervalInMillis,
      workerId: shared.workerId,
      leaseDurationMs: config.runtime.leaseDurationInSeconds * 1000,
      log,
    });
  const transform = pipeline.processing?.transform;
  let transforms: TransformPool | undefined;
  if (transform) {
    transforms = new TransformPool(transform.module, transform.concurrency, transform.environment, log);
    await transforms.start(); // a module that cannot load stops the start, with its error
    shared.track(transforms);
  }
  const arn = deliveryStreamArn(streamConfig);
  const context = { deliveryStreamName: name, deliveryStreamArn: arn, log };
  const errorOutput = plugin.createErrorOutput?.(destinationConfig, context);
  const deadLetters = shared.deadLetterQueue(name);
  return new DeliveryStream({
    name,
    source,
    destination: plugin.create(destinationConfig, context),
    ...(errorOutput ? { errorOutput } : {}),
    ...(deadLetters ? { deadLetters } : {}),
    destinationKey: plugin.configKey,
    destinationLabel: plugin.metricLabel,
    processingFailuresToDeadLetters: config.runtime.deadLetterQueue.includeProcessingFailures,
    pipeline,
    ...(transforms ? { transforms } : {}),
    ...(pipeline.conversion ? { conversions: shared.conversionPool() } : {}),
    identity: { region: sourcePlugin.region(streamConfig.source.config), deliveryStreamArn: arn, source: sourcePlugin.eventFields(streamConfig.source.config) },
    budget: shared.budget,
    clock,
    log,
    ...(options.onDelivered ? { onDelivered: options.onDelivered } : {}),
  });
}
