import { createHash } from 'node:crypto';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { assembleDeliveryStream, SharedResources } from '../assemble.js';
import { systemClock } from '../clock.js';
import type { DeliveryStreamConfig, ServiceConfig } from '../config.js';
import { silentLogger, type Logger } from '../log.js';
import type { Redis } from 'ioredis';
import type { ByteBudget } from '../budget.js';
import type { Source } from '../records.js';
import { redisConnection } from '../redis/connection.js';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import type { KinesisSourceConfig } from '../sources/kinesis/config.js';
import { createKinesisClient } from '../sources/kinesis/source.js';
import { KinesisWindowSource, type KinesisFrom } from '../sources/kinesis-window/source.js';
import { httpSettings } from '../aws.js';
import { putAll } from '../dev/producer.js';
import { RateLimit } from './rate.js';
import { archivedObjects, ArchiveSource, hoursOf, inWindow, readArchived, recordsOfObject, type ArchiveLocation, type ArchivedObject, type ArchiveWindow } from '../sources/s3-archive/source.js';
import type { Framing } from '../sources/s3-archive/framing.js';
import { createS3Client } from '../../destinations/s3/index.js';
import { s3DestinationSchema } from '../../destinations/s3/config.js';
import { ReplayProgress } from './progress.js';
import { hourPath } from '../archive/manifest.js';

export type { Framing } from '../sources/s3-archive/framing.js';

export interface ReplayOptions {
  /** The archive: `s3://bucket/prefix`, the prefix its objects were written under. */
  readonly from?: string;
  /** Records whose arrival time is in [start, end). */
  readonly start?: Date | string;
  readonly end?: Date | string;
  /**
   * Instead of the archive: the target stream's own Kinesis stream, re-read from this time (ISO) or
   * from the record with this sequence number, beside its live readers and without touching their
   * checkpoints…
   */
  readonly kinesisFrom?: string;
  /** …up to records that arrived before this time (ISO); by default, when the replay starts. */
  readonly kinesisUntil?: string;
  /** The delivery stream of the configuration the records go through: its transforms, partitioning, conversion and destination. */
  readonly to?: string;
  /** …or a Kinesis stream the records are put into (PutRecords), with their partition keys, in their order per original shard. */
  readonly toKinesis?: string;
  /** Where that Kinesis stream is, when not AWS's (default: the endpoint of a source of the config reading it). */
  readonly kinesis?: { readonly endpoint?: string; readonly region?: string };
  /** The replay's name: running it again resumes it. Default: derived from from, start, end and to. */
  readonly id?: string;
  /** Count what would be replayed, deliver nothing. */
  readonly dryRun?: boolean;
  /** For an archive without manifests: how to split its objects (see README, "Replay"). */
  readonly framing?: Framing;
  readonly maxRecordsPerSecond?: number;
  readonly maxMBPerSecond?: number;
  /** Where the archive's manifests are: default `_manifests/` (s3Destination.manifests.prefix). */
  readonly manifestsPrefix?: string;
  /** Where the archive's bucket is served, when not AWS's S3 (default: the endpoint of a stream of the config writing to that bucket). */
  readonly s3?: { readonly endpoint?: string; readonly region?: string };
  readonly log?: Logger;
  /** Called about every half second while records flow, and once at the end. */
  readonly onProgress?: (progress: ReplayReport) => void;
  /** Aborting it stops the replay cleanly: what reached an end is saved; running it again resumes. */
  readonly signal?: AbortSignal;
}

export interface ReplayReport {
  readonly id: string;
  /** From the manifests (undefined without them). */
  readonly totalRecords: number | undefined;
  readonly totalBytes: number | undefined;
  readonly totalObjects: number;
  /** Records handed to the target's pipeline in this run, and their bytes. */
  readonly records: number;
  readonly bytes: number;
  /** Records an earlier run of this replay already brought to an end. */
  readonly recordsBefore: number;
  readonly objectsDone: number;
  readonly startedAt: number;
}

export interface ReplayResult extends ReplayReport {
  /**
   * finished: every record of the window reached an end; stopped: interrupted, progress saved (run
   * it again); already-finished: an earlier run finished it; dry-run: nothing was delivered.
   */
  readonly state: 'finished' | 'stopped' | 'already-finished' | 'dry-run';
  readonly objectsSkipped: number;
}

export class ReplayError extends Error {}

/**
 * Replays a time range of an S3 archive through a delivery stream: its transforms, partitioning,
 * conversion and destination, its retries, error output and DLQ. Objects are found hour by hour
 * through their manifests (never by listing the bucket), records picked by arrival time, each with
 * its original shard, sequence numbers and partition key (so OpenSearch ids are the original ones)
 * and batch ids derived from them (so HTTP request ids and S3 keys repeat on a re-run). Progress is
 * kept in Redis under the target stream: running the same replay again resumes it. The target's
 * live checkpoints and leases are not touched.
 */
export async function replay(config: ServiceConfig, options: ReplayOptions): Promise<ReplayResult> {
  const log = options.log ?? silentLogger;
  if (options.kinesisFrom !== undefined) return replayFromKinesis(config, options, log);
  if (options.from === undefined || options.start === undefined || options.end === undefined) throw new ReplayError('give --from s3://bucket/prefix with --start and --end, or --kinesis-from');
  const window = windowOf(options.start, options.end);
  if ((options.to === undefined) === (options.toKinesis === undefined)) throw new ReplayError('give one target: --to <delivery stream> or --to-kinesis <stream>');
  const target = options.to === undefined ? undefined : config.deliveryStreams.find((s) => s.deliveryStreamName === options.to);
  if (options.to !== undefined && !target) throw new ReplayError(`no delivery stream ${JSON.stringify(options.to)} in the configuration (it has ${config.deliveryStreams.map((s) => JSON.stringify(s.deliveryStreamName)).join(', ')})`);
  const { bucket, prefix } = parseS3Url(options.from!);
  const id = options.id ?? createHash('sha256').update(`${options.from}|${window.start}|${window.end}|${options.to ?? `kinesis:${options.toKinesis}`}`).digest('hex').slice(0, 12);
  if (!/^[\w.-]{1,64}$/.test(id)) throw new ReplayError(`--id must be 1–64 of a-z A-Z 0-9 _ . -, got ${JSON.stringify(id)}`);
  const client = archiveClient(config, bucket, options.s3);
  const location: ArchiveLocation = { client, bucket, objectPrefix: prefix, manifestsPrefix: options.manifestsPrefix ?? '_manifests/', framing: options.framing };
  try {
    // The plan: every object of the window, from the manifests (small) — the totals come from them.
    const planned: ArchivedObject[] = [];
    for await (const object of archivedObjects(location, window, options.signal)) planned.push(object);
    if (planned.length === 0 && !options.framing && (await unmanifested(client, bucket, prefix, window, location.manifestsPrefix))) {
      throw new ReplayError(
        `s3://${bucket}/${prefix} holds objects but no manifests for ${new Date(window.start).toISOString()}–${new Date(window.end).toISOString()} under ${location.manifestsPrefix}: ` +
          'an archive written before manifests, or by Amazon Data Firehose. Give --framing newline (one record per line) or --framing json-concat (JSON objects back to back); ' +
          'its records are then picked by the time in each object\'s name, not by their own arrival, and binary records without a delimiter cannot be split at all',
      );
    }
    const parquet = planned.find((o) => o.manifest?.encoding === 'PARQUET');
    if (parquet) {
      throw new ReplayError(
        `s3://${bucket}/${parquet.key} is Parquet: its manifest describes its rows, but a replay does not read Parquet back into records yet. ` +
          'Replay the source record backup (s3BackupMode: Enabled), or the stream\'s own Kinesis source with --kinesis-from',
      );
    }
    let totalRecords: number | undefined = options.framing ? undefined : 0;
    let totalBytes: number | undefined = options.framing ? undefined : 0;
    for (const o of planned) {
      if (!o.manifest) continue;
      const n = inWindow(o.manifest, window);
      totalRecords! += n.records;
      totalBytes! += n.bytes;
    }
    const startedAt = Date.now();
    const base = { id, totalRecords, totalBytes, totalObjects: planned.length, startedAt };
    if (options.dryRun) {
      const result: ReplayResult = { ...base, state: 'dry-run', records: 0, bytes: 0, recordsBefore: 0, objectsDone: 0, objectsSkipped: 0 };
      options.onProgress?.(result);
      return result;
    }
    if (options.toKinesis !== undefined) return await runToKinesis(config, options.toKinesis, location, window, planned, base, options, log);
    return await run(config, target!, location, window, planned, base, options, log);
  } finally {
    client.destroy();
  }
}

type ReplayBase = Pick<ReplayReport, 'id' | 'totalRecords' | 'totalBytes' | 'totalObjects' | 'startedAt'>;

/** A replay's source: it says whether it read all it was to read, and what it has done. */
interface ReplaySource extends Source {
  readonly stopped: boolean;
}

/**
 * Runs a replay's source through the target delivery stream, assembled as for the service but
 * alone (no live reader, checkpoints or leases of the target involved), with batch ids from
 * positions; reports as it goes; aborting the signal stops the source, and what was handed on is
 * delivered before it returns. The replay is marked finished once the source read everything and
 * every record reached an end.
 */
async function throughDeliveryStream<S extends ReplaySource>(
  config: ServiceConfig,
  target: DeliveryStreamConfig,
  redis: Redis,
  progress: ReplayProgress,
  options: ReplayOptions,
  log: Logger,
  makeSource: (budget: ByteBudget, log: Logger) => S,
  report: (source: S) => ReplayReport,
  objectsSkipped: (source: S) => number,
): Promise<ReplayResult> {
  const shared = new SharedResources(config, [target], redis, undefined, systemClock, log, `replay:${progress.id}`);
  let source: S | undefined;
  const stream = await assembleDeliveryStream(target, shared, { positionalBatchIds: true, source: (streamLog) => (source = makeSource(shared.budget, streamLog)) });
  const ticker = setInterval(() => options.onProgress?.(report(source!)), 500);
  const stop = () => source?.stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    await stream.start();
    const clean = await stream.stop(config.runtime.shutdownTimeoutInSeconds * 1000);
    const stopped = source!.stopped || !clean;
    if (!stopped) await progress.finish();
    const result: ReplayResult = { ...report(source!), state: stopped ? 'stopped' : 'finished', objectsSkipped: objectsSkipped(source!) };
    options.onProgress?.(result);
    return result;
  } finally {
    clearInterval(ticker);
    options.signal?.removeEventListener('abort', stop);
    await shared.close();
  }
}

/** What an earlier run left, or the answer that it finished; the replay is marked running with what it is. */
async function begin(progress: ReplayProgress, base: ReplayBase, description: Record<string, string>): Promise<{ before: Awaited<ReturnType<ReplayProgress['load']>> } | { finished: ReplayResult }> {
  const before = await progress.load();
  if (before.state === 'finished') return { finished: { ...base, state: 'already-finished', records: 0, bytes: 0, recordsBefore: before.records, objectsDone: before.objects, objectsSkipped: 0 } };
  await progress.start(description);
  return { before };
}

async function run(
  config: ServiceConfig,
  target: DeliveryStreamConfig,
  location: ArchiveLocation,
  window: ArchiveWindow,
  planned: readonly ArchivedObject[],
  base: ReplayBase,
  options: ReplayOptions,
  log: Logger,
): Promise<ReplayResult> {
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, log);
  redis.on('error', () => undefined);
  try {
    const progress = new ReplayProgress(redis, target.deliveryStreamName, base.id);
    const begun = await begin(progress, base, { from: options.from!, start: new Date(window.start).toISOString(), end: new Date(window.end).toISOString(), to: target.deliveryStreamName });
    if ('finished' in begun) return begun.finished;
    const { before } = begun;
    return await throughDeliveryStream(
      config,
      target,
      redis,
      progress,
      options,
      log,
      (budget, streamLog) =>
        new ArchiveSource({
          location,
          planned,
          window,
          progress,
          maxRecordsPerSecond: options.maxRecordsPerSecond,
          maxBytesPerSecond: options.maxMBPerSecond ? options.maxMBPerSecond * 1024 * 1024 : undefined,
          budget,
          log: streamLog,
        }),
      (source) => ({ ...base, records: source.counts.records, bytes: source.counts.bytes, recordsBefore: before.records, objectsDone: before.objects + source.counts.objectsDone }),
      (source) => source.counts.objectsSkipped,
    );
  } finally {
    redis.disconnect();
  }
}

/**
 * Into a Kinesis stream: each object's records of the window put in object order (which is each
 * original shard's order), 500 at a time with their partition keys; progress saved after every
 * batch, so an interrupted run re-puts at most one batch. Kinesis may refuse some entries of a
 * batch (throttling): those are put again after the rest of it, the one place order can change.
 */
async function runToKinesis(
  config: ServiceConfig,
  streamName: string,
  location: ArchiveLocation,
  window: ArchiveWindow,
  planned: readonly ArchivedObject[],
  base: ReplayBase,
  options: ReplayOptions,
  log: Logger,
): Promise<ReplayResult> {
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, log);
  redis.on('error', () => undefined);
  const reader = config.deliveryStreams.map((s) => s.source.config as { streamName?: string; endpoint?: string; region?: string }).find((s) => s.streamName === streamName);
  const client = new KinesisClient({ region: options.kinesis?.region ?? reader?.region ?? process.env.AWS_REGION ?? 'us-east-1', ...httpSettings(options.kinesis?.endpoint ?? reader?.endpoint, 30_000) });
  const recordRate = options.maxRecordsPerSecond ? new RateLimit(options.maxRecordsPerSecond) : undefined;
  const byteRate = options.maxMBPerSecond ? new RateLimit(options.maxMBPerSecond * 1024 * 1024) : undefined;
  const batchSize = options.maxRecordsPerSecond ? Math.max(1, Math.min(500, Math.floor(options.maxRecordsPerSecond / 10))) : 500;
  const signal = options.signal ?? new AbortController().signal;
  try {
    const progress = new ReplayProgress(redis, `kinesis:${streamName}`, base.id);
    const begun = await begin(progress, base, { from: options.from!, start: new Date(window.start).toISOString(), end: new Date(window.end).toISOString(), toKinesis: streamName });
    if ('finished' in begun) return begun.finished;
    const { before } = begun;
    const counts = { records: 0, bytes: 0, objectsDone: 0, objectsSkipped: 0 };
    const report = (): ReplayReport => ({ ...base, records: counts.records, bytes: counts.bytes, recordsBefore: before.records, objectsDone: before.objects + counts.objectsDone });
    const ticker = setInterval(() => options.onProgress?.(report()), 500);
    try {
      for (const object of planned) {
        if (signal.aborted) break;
        if (progress.isDone(object.key)) {
          counts.objectsSkipped++;
          continue;
        }
        const records = recordsOfObject(location, window, object, await readArchived(location, object));
        let i = progress.doneUpTo(object.key);
        while (i < records.length && !signal.aborted) {
          const batch = records.slice(i, i + batchSize);
          let bytes = 0;
          for (const r of batch) bytes += r.data.length;
          await recordRate?.take(batch.length, signal);
          await byteRate?.take(bytes, signal);
          if (signal.aborted) break;
          await putAll(client, streamName, batch.map((r) => ({ data: r.data, partitionKey: r.partitionKey })));
          i += batch.length;
          counts.records += batch.length;
          counts.bytes += bytes;
          await progress.objectUpTo(object.key, i, batch.length, bytes);
        }
        if (i < records.length) break;
        await progress.objectDone(object.key);
        counts.objectsDone++;
      }
      const stopped = signal.aborted;
      if (!stopped) await progress.finish();
      const result: ReplayResult = { ...report(), state: stopped ? 'stopped' : 'finished', objectsSkipped: counts.objectsSkipped };
      options.onProgress?.(result);
      return result;
    } finally {
      clearInterval(ticker);
    }
  } finally {
    client.destroy();
    redis.disconnect();
  }
}

/** A delivery stream's own Kinesis stream, re-read from a time or a sequence number, through the stream's pipeline. */
async function replayFromKinesis(config: ServiceConfig, options: ReplayOptions, log: Logger): Promise<ReplayResult> {
  if (options.from !== undefined || options.toKinesis !== undefined) throw new ReplayError('--kinesis-from re-reads the --to stream\'s own source: give neither --from nor --to-kinesis with it');
  if (options.dryRun) throw new ReplayError('--dry-run counts an archive\'s manifests; a Kinesis stream is only counted by reading it');
  const target = config.deliveryStreams.find((s) => s.deliveryStreamName === options.to);
  if (!target) throw new ReplayError(`no delivery stream ${JSON.stringify(options.to)} in the configuration (it has ${config.deliveryStreams.map((s) => JSON.stringify(s.deliveryStreamName)).join(', ')})`);
  if (target.source.plugin.configKey !== 'kinesisStreamSource') throw new ReplayError(`${target.deliveryStreamName} does not read a Kinesis stream`);
  const sourceConfig = target.source.config as KinesisSourceConfig;
  const fromText = options.kinesisFrom!;
  const from: KinesisFrom = /^\d{20,}$/.test(fromText) ? { sequenceNumber: fromText } : { timestamp: Date.parse(fromText) };
  if ('timestamp' in from && Number.isNaN(from.timestamp)) throw new ReplayError(`--kinesis-from must be an ISO-8601 time or a sequence number, got ${JSON.stringify(fromText)}`);
  const until = options.kinesisUntil === undefined ? Date.now() : Date.parse(options.kinesisUntil);
  if (Number.isNaN(until)) throw new ReplayError(`--until must be an ISO-8601 time, got ${JSON.stringify(options.kinesisUntil)}`);
  const id = options.id ?? createHash('sha256').update(`kinesis:${sourceConfig.streamName}|${fromText}|${options.kinesisUntil ?? ''}|${target.deliveryStreamName}`).digest('hex').slice(0, 12);
  if (!/^[\w.-]{1,64}$/.test(id)) throw new ReplayError(`--id must be 1–64 of a-z A-Z 0-9 _ . -, got ${JSON.stringify(id)}`);
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 2, lazyConnect: true }, log);
  redis.on('error', () => undefined);
  const client = createKinesisClient(sourceConfig);
  const startedAt = Date.now();
  const base = { id, totalRecords: undefined, totalBytes: undefined, totalObjects: 0, startedAt };
  try {
    const progress = new ReplayProgress(redis, target.deliveryStreamName, id);
    const begun = await begin(progress, base, { kinesisFrom: fromText, until: new Date(until).toISOString(), to: target.deliveryStreamName });
    if ('finished' in begun) return begun.finished;
    const { before } = begun;
    return await throughDeliveryStream(
      config,
      target,
      redis,
      progress,
      options,
      log,
      (budget, streamLog) => new KinesisWindowSource({ client, streamName: sourceConfig.streamName, from, until, progress, maxRecordsPerSecond: options.maxRecordsPerSecond, budget, log: streamLog }),
      (source) => ({ ...base, totalObjects: source.counts.shards, records: source.counts.records, bytes: source.counts.bytes, recordsBefore: before.records, objectsDone: before.objects + source.counts.shardsDone }),
      () => 0,
    );
  } finally {
    client.destroy();
    redis.disconnect();
  }
}

function windowOf(start: Date | string, end: Date | string): ArchiveWindow {
  const s = typeof start === 'string' ? Date.parse(start) : start.getTime();
  const e = typeof end === 'string' ? Date.parse(end) : end.getTime();
  if (Number.isNaN(s)) throw new ReplayError(`--start must be an ISO-8601 time, got ${JSON.stringify(start)}`);
  if (Number.isNaN(e)) throw new ReplayError(`--end must be an ISO-8601 time, got ${JSON.stringify(end)}`);
  if (!(e > s)) throw new ReplayError(`--end (${new Date(e).toISOString()}) must be after --start (${new Date(s).toISOString()})`);
  return { start: s, end: e };
}

function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new ReplayError(`--from must be s3://bucket/prefix, got ${JSON.stringify(url)}`);
  return { bucket: m[1]!, prefix: m[2] ?? '' };
}

/** An S3 client for the archive's bucket: where a stream of the configuration writes to it, the same endpoint and region. */
function archiveClient(config: ServiceConfig, bucket: string, s3: ReplayOptions['s3']): S3Client {
  const writer = config.deliveryStreams
    .map((s) => s.destination.config as { bucket?: string; endpoint?: string; region?: string; s3Configuration?: { bucket?: string; endpoint?: string; region?: string } })
    .map((d) => (d.bucket === bucket ? d : d.s3Configuration?.bucket === bucket ? d.s3Configuration : undefined))
    .find((d) => d !== undefined);
  const endpoint = s3?.endpoint ?? writer?.endpoint;
  const region = s3?.region ?? writer?.region;
  return createS3Client(s3DestinationSchema.parse({ bucket, ...(endpoint ? { endpoint } : {}), ...(region ? { region } : {}) }));
}

/** Objects in the window's hours (Firehose's layout), or anywhere under the prefix when no manifest exists at all: an archive without manifests. */
async function unmanifested(client: S3Client, bucket: string, prefix: string, window: ArchiveWindow, manifestsPrefix: string): Promise<boolean> {
  for (const hour of hoursOf(window)) if (await hasObjects(client, bucket, `${prefix}${hourPath(hour)}`)) return true;
  return (await hasObjects(client, bucket, prefix)) && !(await hasObjects(client, bucket, manifestsPrefix));
}

async function hasObjects(client: S3Client, bucket: string, prefix: string): Promise<boolean> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }));
  return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
}
