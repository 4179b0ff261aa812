import { Redis } from 'ioredis';
import { ByteBudget } from './budget.js';
import { Checkpointer, RedisCheckpointStore, type CheckpointStore } from './checkpoints.js';
import { sleep, systemClock, type Clock } from './clock.js';
import type { ServiceConfig } from './config.js';
import { DeliveryStream, type DeliveredEvent } from './delivery-stream.js';
import { createLogger, type Logger } from './log.js';
import { startAdmin } from './admin.js';
import { DeadLetterQueue, dlqConnection } from './dlq.js';
import { KinesisSource } from './sources/kinesis.js';
import { availableParallelism } from 'node:os';
import { ConversionPool } from './conversion/pool.js';
import { HandlerPool } from './transform/pool.js';

const MiB = 1024 * 1024;

export interface ServiceOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly onDelivered?: (event: DeliveredEvent) => void;
}

export interface RunningService {
  /** The admin endpoint's URL, when enabled. */
  readonly adminUrl?: string;
  readonly streams: readonly DeliveryStream[];
  readonly sources: readonly KinesisSource[];
  readonly budget: ByteBudget;
  /** Graceful stop; resolves true when everything read was delivered and checkpointed. */
  stop(): Promise<boolean>;
}

/** Starts every delivery stream of a configuration in this process. */
export async function startService(config: ServiceConfig, options: ServiceOptions = {}): Promise<RunningService> {
  const log = options.log ?? createLogger();
  const clock = options.clock ?? systemClock;
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 2, lazyConnect: true });
  redis.on('error', (err: Error) => log.debug('redis connection error', { error: err }));
  const store = new RedisCheckpointStore(redis);
  const stopping = new AbortController();

  const bufferBytes = config.deliveryStreams.reduce(
    (sum, s) => sum + s.destination.plugin.pipeline(s.destination.config).buffer.sizeBytes,
    0,
  );
  // Twice the buffers: one filling while the previous one is delivered.
  const budget = new ByteBudget((config.runtime.memoryBudgetInMBs ?? 0) * MiB || 2 * bufferBytes);

  const dlqConnectionHandle = config.runtime.deadLetterQueue.enabled ? dlqConnection(config.redis.url) : undefined;
  dlqConnectionHandle?.on('error', (err: Error) => log.debug('dead-letter queue connection error', { error: err }));
  const deadLetterQueues: DeadLetterQueue[] = [];
  const streams: DeliveryStream[] = [];
  const pools: Array<{ close(): Promise<void> }> = [];
  // One set of conversion threads for the process (both cores), shared by every converting stream.
  let conversions: ConversionPool | undefined;
  const sources: KinesisSource[] = [];
  for (const streamConfig of config.deliveryStreams) {
    const name = streamConfig.deliveryStreamName;
    const streamLog = log.child({ deliveryStream: name });
    const { stored, origin } = await loadCheckpoints(store, name, clock, streamLog, stopping.signal);
    const checkpointer = new Checkpointer(name, store, stored, origin, budget, streamLog);
    const { plugin, config: destinationConfig } = streamConfig.destination;
    const pipeline = plugin.pipeline(destinationConfig);
    const source = new KinesisSource(streamConfig.kinesisStreamSource, { checkpointer, budget, log: streamLog });
    const lambda = pipeline.processing?.lambda;
    let handlers: HandlerPool | undefined;
    if (lambda) {
      handlers = new HandlerPool(lambda.module, lambda.concurrency, lambda.environment, streamLog);
      await handlers.start(); // a module that cannot load stops the start, with its error
      pools.push(handlers);
    }
    if (pipeline.conversion && !conversions) {
      conversions = new ConversionPool(Math.max(1, Math.min(4, availableParallelism())), log);
      conversions.start();
      pools.push(conversions);
    }
    const { region, streamName } = streamConfig.kinesisStreamSource;
    const deliveryStreamArn = `arn:aws:firehose:${region}:000000000000:deliverystream/${name}`;
    const context = { deliveryStreamName: name, deliveryStreamArn, log: streamLog };
    const errorOutput = plugin.createErrorOutput?.(destinationConfig, context);
    const deadLetters = dlqConnectionHandle
      ? new DeadLetterQueue(dlqConnectionHandle, name, config.runtime.deadLetterQueue.maxSizeInMBs * MiB)
      : undefined;
    if (deadLetters) deadLetterQueues.push(deadLetters);
    const stream = new DeliveryStream({
      name,
      source,
      destination: plugin.create(destinationConfig, context),
      ...(errorOutput ? { errorOutput } : {}),
      ...(deadLetters ? { deadLetters } : {}),
      destinationKey: plugin.configKey,
      processingFailuresToDeadLetters: config.runtime.deadLetterQueue.includeProcessingFailures,
      pipeline,
      ...(handlers ? { handlers } : {}),
      ...(pipeline.conversion && conversions ? { conversions } : {}),
      identity: {
        region,
        deliveryStreamArn,
        sourceKinesisStreamArn: streamConfig.kinesisStreamSource.streamARN ?? `arn:aws:kinesis:${region}:000000000000:stream/${streamName}`,
      },
      checkpointer,
      clock,
      log: streamLog,
      ...(options.onDelivered ? { onDelivered: options.onDelivered } : {}),
    });
    streams.push(stream);
    sources.push(source);
  }
  for (const stream of streams) {
    stream.start(config.runtime.checkpointIntervalInMillis).catch((err: unknown) => log.error('delivery stream failed', { stream: stream.name, error: err }));
  }
  log.info('started', {
    deliveryStreams: streams.map((s) => s.name),
    byteBudgetMiB: Math.round(budget.limit / MiB),
  });

  const admin = config.runtime.admin.enabled
    ? await startAdmin({ config, streams, sources, deadLetterQueues }, config.runtime.admin.host, config.runtime.admin.port, log)
    : undefined;
  let stopped: Promise<boolean> | undefined;
  return {
    ...(admin ? { adminUrl: admin.url } : {}),
    streams,
    sources,
    budget,
    stop() {
      stopped ??= (async () => {
        stopping.abort();
        await admin?.close();
        const results = await Promise.all(streams.map((s) => s.stop(config.runtime.shutdownTimeoutInSeconds * 1000)));
        await Promise.all(sources.map((s) => s.close()));
        await Promise.all(pools.map((p) => p.close()));
        await Promise.all(deadLetterQueues.map((q) => q.close()));
        dlqConnectionHandle?.disconnect();
        redis.disconnect();
        const clean = results.every(Boolean);
        log.info('stopped', { clean });
        return clean;
      })();
      return stopped;
    },
  };
}

/** Waits for Redis rather than starting without checkpoints (which would re-read from the starting position). */
async function loadCheckpoints(store: CheckpointStore, name: string, clock: Clock, log: Logger, signal: AbortSignal) {
  for (let attempt = 1; ; attempt++) {
    try {
      const stored = await store.load(name);
      const origin = await store.claimOrigin(name, clock.now());
      return { stored, origin };
    } catch (err) {
      if (signal.aborted) throw err;
      log.warn('cannot read checkpoints from Redis yet; retrying', { attempt, error: err });
      await sleep(Math.min(10_000, 500 * attempt), signal);
    }
  }
}
