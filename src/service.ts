import { redisConnection } from './redis/connection.js';
import { assembleDeliveryStream, SharedResources } from './assemble.js';
import type { ByteBudget } from './budget.js';
import { systemClock, type Clock } from './clock.js';
import type { ServiceConfig } from './config.js';
import type { DeliveredEvent, DeliveryStream } from './delivery-stream.js';
import { createLogger, type Logger } from './log.js';
import { startAdmin, type AdminTarget } from './admin.js';
import { dlqConnection } from './dlq.js';
import type { Source } from './records.js';
import { MiB } from './units.js';


type Mutable<T> = { -readonly [K in keyof T]: T[K] };

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
  /**
   * Runs `next`'s delivery streams in place of the running ones (SIGHUP): added ones start, removed
   * ones stop as at shutdown (sealed, delivered, checkpointed, leases handed back), changed ones do
   * both; unchanged ones run on untouched. Reloads run one at a time.
   */
  reload(next: ServiceConfig): Promise<ReloadResult>;
}

export interface ReloadResult {
  readonly added: string[];
  readonly removed: string[];
  readonly restarted: string[];
  readonly unchanged: string[];
  /** Streams stopped by this reload that left records without an end (read again at their next start). */
  readonly unclean: string[];
  /** Settings outside deliveryStreams that changed: they take a restart, and the running ones are kept. */
  readonly needRestart: string[];
}

/** Starts every delivery stream of a configuration in this process. */
export async function startService(config: ServiceConfig, options: ServiceOptions = {}): Promise<RunningService> {
  const log = options.log ?? createLogger();
  const clock = options.clock ?? systemClock;
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, log);
  const dlqRedis = config.runtime.deadLetterQueue.enabled ? dlqConnection(config.redis, log) : undefined;
  const shared = new SharedResources(config, config.deliveryStreams, redis, dlqRedis, clock, log, options.workerId);

  // One array, changed in place by reloads: the admin endpoint and metrics read it as it is now.
  const streams: DeliveryStream[] = [];
  const fingerprints = new Map<string, string | undefined>();
  const launch = (stream: DeliveryStream) => stream.start().catch((err: unknown) => log.error('delivery stream failed', { stream: stream.name, error: err }));
  for (const streamConfig of config.deliveryStreams) {
    streams.push(await assembleDeliveryStream(streamConfig, shared, { onDelivered: options.onDelivered }));
    fingerprints.set(streamConfig.deliveryStreamName, streamConfig.fingerprint);
  }
  for (const stream of streams) launch(stream);
  log.info('started', { workerId: shared.workerId, deliveryStreams: streams.map((s) => s.name), byteBudgetMiB: Math.round(shared.budget.limit / MiB) });

  const adminTarget: Mutable<AdminTarget> = { config, streams, deadLetterQueues: shared.deadLetterQueues, redis: dlqRedis, readinessRedis: redis, budget: shared.budget, workerId: shared.workerId };
  const admin = config.runtime.admin.enabled ? await startAdmin(adminTarget, config.runtime.admin.host, config.runtime.admin.port, log) : undefined;
  let stopped: Promise<boolean> | undefined;
  let reloading: Promise<unknown> = Promise.resolve();

  const stopOne = async (stream: DeliveryStream): Promise<boolean> => {
    const clean = await stream.stop(config.runtime.shutdownTimeoutInSeconds * 1000);
    streams.splice(streams.indexOf(stream), 1);
    fingerprints.delete(stream.name);
    await shared.release(stream.name);
    log.info('delivery stream stopped', { deliveryStream: stream.name, clean });
    return clean;
  };

  const reload = async (next: ServiceConfig): Promise<ReloadResult> => {
    if (stopped) throw new Error('the service is stopping');
    const needRestart = [
      ...(JSON.stringify(next.redis) !== JSON.stringify(config.redis) ? ['redis'] : []),
      ...(JSON.stringify(next.runtime) !== JSON.stringify(config.runtime) ? ['runtime'] : []),
    ];
    if (needRestart.length > 0) log.warn('reload: these settings take a restart; the running ones are kept', { settings: needRestart });
    const wanted = new Map(next.deliveryStreams.map((s) => [s.deliveryStreamName, s]));
    const result: ReloadResult = { added: [], removed: [], restarted: [], unchanged: [], unclean: [], needRestart };
    for (const stream of [...streams]) {
      const replacement = wanted.get(stream.name);
      if (replacement && replacement.fingerprint === fingerprints.get(stream.name)) {
        result.unchanged.push(stream.name);
        continue;
      }
      (replacement ? result.restarted : result.removed).push(stream.name);
      if (!(await stopOne(stream))) result.unclean.push(stream.name);
    }
    for (const streamConfig of next.deliveryStreams) {
      const name = streamConfig.deliveryStreamName;
      if (result.unchanged.includes(name)) continue;
      if (!result.restarted.includes(name)) result.added.push(name);
      const stream = await assembleDeliveryStream(streamConfig, shared, { onDelivered: options.onDelivered });
      streams.push(stream);
      fingerprints.set(name, streamConfig.fingerprint);
      launch(stream);
    }
    adminTarget.config = { ...config, deliveryStreams: next.deliveryStreams };
    admin?.reloaded();
    log.info('reloaded', { ...result });
    return result;
  };
  return {
    ...(admin ? { adminUrl: admin.url } : {}),
    streams,
    sources: streams.map((s) => s.source),
    budget: shared.budget,
    reload(next) {
      const done = reloading.then(() => reload(next));
      reloading = done.catch(() => undefined);
      return done;
    },
    stop() {
      stopped ??= (async () => {
        await reloading;
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
