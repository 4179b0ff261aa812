import { availableParallelism, hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { ByteBudget } from './budget.js';
import type { Clock } from './clock.js';
import type { DeliveryStreamConfig, ServiceConfig } from './config.js';
import { ConversionPool } from './conversion/pool.js';
import { DeliveryStream, type DeliveredEvent } from './delivery-stream.js';
import { DeadLetterQueue } from './dlq.js';
import type { Logger } from './log.js';
import type { PipelineSettings } from './pipeline-settings.js';
import type { Source } from './records.js';
import { TransformPool } from './transform/pool.js';
import { MiB } from './units.js';


/** What the default budget keeps for GetRecords responses being read (a few 10 MB responses). */
const READS_IN_FLIGHT_BYTES = 32 * MiB;

/** runtime.memoryBudgetInMBs when it is not set: what the streams' buffers hold, and reads in flight. */
export function defaultBudgetBytes(pipelines: readonly PipelineSettings[]): number {
  let held = 0;
  for (const pipeline of pipelines) held += defaultHeldBytes(pipeline);
  return held + READS_IN_FLIGHT_BYTES;
}

/**
 * What one stream's buffers hold at most, by default: twice a buffer (one filling while the previous
 * one is delivered). A GZIP buffer holds its compressed bytes, about a quarter of its size for JSON
 * (a 128 MB buffer of logs: 28 MB), a Parquet one its encoded row groups, about a third (38 MB),
 * plus the raw chunks being encoded; should its records compress less, backpressure seals it
 * before its size. Everything else holds the records whole.
 */
function defaultHeldBytes(pipeline: PipelineSettings): number {
  const { buffer } = pipeline;
  const shrinks = buffer.encoding === 'PARQUET' ? 3 : buffer.encoding === 'GZIP' && !pipeline.recordOriented ? 4 : 1;
  const one = shrinks > 1 ? Math.max(buffer.sizeBytes / shrinks, 8 * MiB) : buffer.sizeBytes;
  return 2 * Math.ceil(one);
}

/** A worker's name unless `--worker-id` gives one: unique per process on a host. */
export function defaultWorkerId(): string {
  return `${hostname()}:${process.pid}`;
}

/** What the delivery streams of one process share: connections, the byte budget, the conversion threads. */
export class SharedResources {
  readonly budget: ByteBudget;
  readonly deadLetterQueues: DeadLetterQueue[] = [];
  private conversions: ConversionPool | undefined;
  private readonly pools: Array<{ readonly pool: { close(): Promise<void> }; readonly owner: string | undefined }> = [];

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
    const pipelines = streams.map((s) => s.destination.plugin.pipeline(s.destination.config));
    this.budget = new ByteBudget((config.runtime.memoryBudgetInMBs ?? 0) * MiB || defaultBudgetBytes(pipelines));
  }

  /** One set of conversion threads for the process (both cores), shared by every converting stream. */
  conversionPool(): ConversionPool {
    if (!this.conversions) {
      this.conversions = new ConversionPool(Math.max(1, Math.min(4, availableParallelism())), this.log);
      this.conversions.start();
      this.pools.push({ pool: this.conversions, owner: undefined });
    }
    return this.conversions;
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.pool.close()));
    await Promise.all(this.deadLetterQueues.map((q) => q.close()));
  }

  /** A delivery stream was stopped for good (a reload removed or replaced it): its own queue and threads go. */
  async release(deliveryStreamName: string): Promise<void> {
    const queues = this.deadLetterQueues.filter((q) => q.deliveryStreamName === deliveryStreamName);
    const pools = this.pools.filter((p) => p.owner === deliveryStreamName);
    for (const q of queues) this.deadLetterQueues.splice(this.deadLetterQueues.indexOf(q), 1);
    for (const p of pools) this.pools.splice(this.pools.indexOf(p), 1);
    await Promise.all([...queues.map((q) => q.close()), ...pools.map((p) => p.pool.close())]);
  }

  deadLetterQueue(deliveryStreamName: string): DeadLetterQueue | undefined {
    if (!this.dlqRedis) return undefined;
    const queue = new DeadLetterQueue(this.dlqRedis, deliveryStreamName, this.config.runtime.deadLetterQueue.maxSizeInMBs * MiB);
    this.deadLetterQueues.push(queue);
    return queue;
  }

  /** Closed with the service, or with its delivery stream (`owner`) when a reload stops it. */
  track(pool: { close(): Promise<void> }, owner?: string): void {
    this.pools.push({ pool, owner });
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
  options: {
    source?: (log: Logger) => Source;
    onDelivered?: ((event: DeliveredEvent) => void) | undefined;
    /** A replay: batch ids from the positions they hold, so a re-run sends the same ones. */
    positionalBatchIds?: boolean;
  } = {},
): Promise<DeliveryStream> {
  const { config, log: rootLog, clock } = shared;
  const name = streamConfig.deliveryStreamName;
  const log = rootLog.child({ deliveryStream: name });
  const { plugin, config: destinationConfig } = streamConfig.destination;
  const configured = plugin.pipeline(destinationConfig);
  const pipeline = options.positionalBatchIds ? { ...configured, buffer: { ...configured.buffer, positionalIds: true } } : configured;
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
    shared.track(transforms, name);
  }
  const arn = deliveryStreamArn(streamConfig);
  const context = { deliveryStreamName: name, deliveryStreamArn: arn, log };
  const errorOutput = plugin.createErrorOutput?.(destinationConfig, context);
  // Copies are made of records as the stream's own source reads them: a redrive's were copied then.
  const sourceBackup = options.source ? undefined : plugin.createSourceBackup?.(destinationConfig, context);
  const deadLetters = shared.deadLetterQueue(name);
  return new DeliveryStream({
    name,
    source,
    destination: plugin.create(destinationConfig, context),
    ...(errorOutput ? { errorOutput } : {}),
    ...(sourceBackup ? { sourceBackup } : {}),
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
