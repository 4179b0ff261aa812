import { redisConnection } from './redis/connection.js';
import type { Redis } from 'ioredis';
import { assembleDeliveryStream, SharedResources } from './assemble.js';
import { systemClock } from './clock.js';
import type { DeliveryStreamConfig, ServiceConfig } from './config.js';
import { DeadLetterQueue, dlqConnection, type DeadLetterFilter } from './dlq.js';
import type { Logger } from './log.js';
import { RedisLock } from './redis/lock.js';
import { DeadLetterSource, type RedriveCounts } from './sources/dead-letters.js';
import { MiB } from './units.js';


export interface RedriveResult extends RedriveCounts {
  /** Entries matching the filter when the redrive started. */
  readonly total: number;
  /** Every record read reached an end and every entry that should leave the queue left it. */
  readonly clean: boolean;
}

export interface RedriveOptions {
  readonly filter?: DeadLetterFilter;
  readonly log: Logger;
  /** Called as records reach their ends, and once at the end. */
  readonly onProgress?: (counts: RedriveCounts, total: number) => void;
  /** The Redis connection BullMQ uses (retrying forever); made from the config when not given. */
  readonly dlqRedis?: Redis;
}

/** The lock that lets one redrive per delivery stream run at a time, wherever it runs. */
export const redriveLockKey = (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:redrive`;

/**
 * Redrives a delivery stream's dead letters through the delivery stream itself: its transforms,
 * partitioning, conversion, destination, retries and acknowledgements. One redrive per stream at a
 * time (a second one is refused with LockHeld). An entry leaves the queue only when its record
 * reached an end again: delivered, in the error output, or parked again with its attempts raised.
 */
export async function redrive(config: ServiceConfig, streamConfig: DeliveryStreamConfig, options: RedriveOptions): Promise<RedriveResult> {
  const name = streamConfig.deliveryStreamName;
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, options.log);
  redis.on('error', () => undefined);
  const dlqRedis = options.dlqRedis ?? dlqConnection(config.redis, options.log);
  if (!options.dlqRedis) dlqRedis.on('error', () => undefined);
  try {
    const lock = await RedisLock.acquire(redis, redriveLockKey(name), `a redrive of ${name}`);
    try {
      const queue = new DeadLetterQueue(dlqRedis, name, config.runtime.deadLetterQueue.maxSizeInMBs * MiB);
      const total = await queue.count(options.filter);
      // Parking again needs the queue even where the running service has it switched off.
      const withQueue: ServiceConfig = { ...config, runtime: { ...config.runtime, deadLetterQueue: { ...config.runtime.deadLetterQueue, enabled: true } } };
      const shared = new SharedResources(withQueue, [streamConfig], redis, dlqRedis, systemClock, options.log);
      let source: DeadLetterSource | undefined;
      const report = () => source && options.onProgress?.(source.counts, total);
      const stream = await assembleDeliveryStream(streamConfig, shared, {
        source: (log) => (source = new DeadLetterSource(queue, options.filter ?? {}, shared.budget, log)),
        onDelivered: report,
      });
      const ticker = setInterval(report, 500);
      try {
        await stream.start();
        const clean = await stream.stop(config.runtime.shutdownTimeoutInSeconds * 1000);
        report();
        return { ...source!.counts, total, clean };
      } finally {
        clearInterval(ticker);
        await shared.close();
        await queue.close();
      }
    } finally {
      await lock.release().catch(() => undefined);
    }
  } finally {
    redis.disconnect();
    if (!options.dlqRedis) dlqRedis.disconnect();
  }
}
