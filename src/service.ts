import { redisConnection } from './redis/connection.js';
import { assembleDeliveryStream, SharedResources } from './assemble.js';
import type { ByteBudget } from './budget.js';
import { systemClock, type Clock } from './clock.js';
import type { ServiceConfig } from './config.js';
import type { DeliveredEvent, DeliveryStream } from './delivery-stream.js';
import { createLogger, type Logger } from './log.js';
import { startAdmin } from './admin.js';
import { dlqConnection } from './dlq.js';
import type { Source } from './records.js';
import { MiB } from './units.js';


export interface ServiceOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly onDelivered?: (event: DeliveredEvent) => void;
  /** This worker's name in the fleet (`--worker-id`); by default host:pid. */
  readonly workerId?: string;
}

export interface RunningService {
  /** The admin endpoint's URL, when enabled. */
  readonly adminUrl?: string;
  readonly streams: readonly DeliveryStream[];
  readonly sources: readonly Source[];
  readonly budget: ByteBudget;
  /** Graceful stop; resolves true when everything read was delivered and committed. */
  stop(): Promise<boolean>;
}

/** Starts every delivery stream of a configuration in this process. */
export async function startService(config: ServiceConfig, options: ServiceOptions = {}): Promise<RunningService> {
  const log = options.log ?? createLogger();
  const clock = options.clock ?? systemClock;
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, log);
  const dlqRedis = config.runtime.deadLetterQueue.enabled ? dlqConnection(config.redis, log) : undefined;
  const shared = new SharedResources(config, config.deliveryStreams, redis, dlqRedis, clock, log, options.workerId);

  const streams: DeliveryStream[] = [];
  for (const streamConfig of config.deliveryStreams) {
    streams.push(await assembleDeliveryStream(streamConfig, shared, { onDelivered: options.onDelivered }));
  }
  for (const stream of streams) {
    stream.start().catch((err: unknown) => log.error('delivery stream failed', { stream: stream.name, error: err }));
  }
  log.info('started', { workerId: shared.workerId, deliveryStreams: streams.map((s) => s.name), byteBudgetMiB: Math.round(shared.budget.limit / MiB) });

  const admin = config.runtime.admin.enabled
    ? await startAdmin({ config, streams, deadLetterQueues: shared.deadLetterQueues, redis: dlqRedis, readinessRedis: redis, budget: shared.budget, workerId: shared.workerId }, config.runtime.admin.host, config.runtime.admin.port, log)
    : undefined;
  let stopped: Promise<boolean> | undefined;
  return {
    ...(admin ? { adminUrl: admin.url } : {}),
    streams,
    sources: streams.map((s) => s.source),
    budget: shared.budget,
    stop() {
      stopped ??= (async () => {
        await admin?.close();
        const results = await Promise.all(streams.map((s) => s.stop(config.runtime.shutdownTimeoutInSeconds * 1000)));
        await shared.close();
        dlqRedis?.disconnect();
        redis.disconnect();
        const clean = results.every(Boolean);
        log.info('stopped', { clean });
        return clean;
      })();
      return stopped;
    },
  };
}
