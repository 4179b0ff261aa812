import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  type GetShardIteratorCommandInput,
  type GetRecordsCommandInput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { setMaxListeners } from 'node:events';
import type { Segment, ShardProgress } from '../../ack.js';
import { awsErrorName, httpSettings } from '../../aws.js';
import { backoff } from '../../backoff.js';
import { Checkpointer, RedisCheckpointStore, type PositionOrder } from '../../checkpoints.js';
import { sleep } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { RecordSink, Source, SourceRecord } from '../../records.js';
import type { SourceContext } from '../../source.js';
import type { KinesisSourceConfig } from './config.js';
import { decodedResponse, decodeGetRecordsInPlace, type DecodedGetRecords } from './get-records.js';
import { deaggregate, isAggregated } from './kpl.js';
import { startingPoint, type ReadFrom, type StartingPoint } from './starting-point.js';

/**
 * Kinesis allows 5 GetRecords calls per second per shard, counted where they arrive. Spacing calls
 * exactly 200 ms apart lets network jitter put six in one second; 210 ms leaves 50 ms of slack.
 */
const MIN_MS_BETWEEN_READS = 210;
/** Kinesis' largest GetRecords response, and its largest record. */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const MAX_RECORD_BYTES = 1024 * 1024;
const THROTTLED = new Set([
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
  'KMSThrottlingException',
  'ThrottlingException',
]);

/**
 * Kinesis sequence numbers are decimal strings without leading zeros, up to 128 digits: prefixed
 * with their length, they sort byte-wise as they compare.
 */
export const sequenceOrder: PositionOrder = {
  sortKey: (sequenceNumber) => `${String(sequenceNumber.length).padStart(3, '0')}:${sequenceNumber}`,
};

/** Checkpoints belong to the stream read: its region and name. */
export function kinesisIdentity(config: Pick<KinesisSourceConfig, 'region' | 'streamName'>): string {
  return `kinesis/${config.region}/${config.streamName}`;
}

export function createKinesisClient(config: KinesisSourceConfig): KinesisClient {
  const client = new KinesisClient({
    region: config.region,
    // The shard readers own retries: the SDK's own would retry a throttled GetRecords within
    // ~100 ms, past the 5 calls/s/shard limit and around the readers' backoff.
    maxAttempts: 1,
    // GetShardIterator can hang on emulators (AT_TIMESTAMP past a shard's end): always time out.
    ...httpSettings(config.endpoint, 30_000),
  });
  decodeGetRecordsInPlace(client);
  return client;
}

/**
 * Reads every shard of a Kinesis stream: a reader per shard, parents read to their end before
 * their children start, new shards picked up by a periodic ListShards. Where each shard starts:
 * starting-point.ts.
 */
export class KinesisSource implements Source {
  readonly identity: string;
  private readonly client: KinesisClient;
  private checkpointer: Checkpointer | undefined;
  /** Where this run began reading each shard. */
  private readonly readFrom = new Map<string, ReadFrom>();
  private readonly stopping = new AbortController();
  private readonly readers = new Map<string, Promise<void>>();
  /** The shards of the latest listing. */
  private known = new Map<string, Shard>();
  /** The last sequence number read per shard, so a reader restarted after an error resumes there. */
  private readonly lastRead = new Map<string, string>();
  /** Per shard, as of its last read: how old its newest record was, and how far behind the tip it is. */
  private readonly lag = new Map<string, { iteratorAgeMs: number; millisBehindLatest: number }>();

  constructor(
    private readonly config: KinesisSourceConfig,
    private readonly context: SourceContext,
    client?: KinesisClient,
  ) {
    this.identity = kinesisIdentity(config);
    this.client = client ?? createKinesisClient(config);
    // Every shard reader's sleeps and SDK calls listen on this one signal.
    setMaxListeners(0, this.stopping.signal);
  }

  /**
   * The largest iterator age seen since the last reset: how long the newest record of a read had
   * been in the stream when it was read (Kinesis' GetRecords.IteratorAgeMilliseconds).
   */
  maxIteratorAgeMs = 0;

  resetIteratorAge(): void {
    this.maxIteratorAgeMs = 0;
  }

  get activeShards(): string[] {
    return [...this.readers.keys()];
  }

  get outstandingSegments(): number {
    return this.checkpointer?.outstandingSegments ?? 0;
  }

  status(): Readonly<Record<string, unknown>> {
    return {
      source: this.identity,
      activeShards: this.activeShards.length,
      maxIteratorAgeMs: this.maxIteratorAgeMs,
      shards: this.shardStatus(),
    };
  }

  /** Per shard: its lag as of its last read, and its checkpoint as it stands in memory. */
  private shardStatus(): Record<string, { iteratorAgeMs: number; millisBehindLatest: number; checkpoint: string | undefined }> {
    const checkpoints = this.checkpointer?.current() ?? {};
    const out: Record<string, { iteratorAgeMs: number; millisBehindLatest: number; checkpoint: string | undefined }> = {};
    for (const [id, lag] of this.lag) out[id] = { ...lag, checkpoint: checkpoints[id] };
    return out;
  }

  async run(sink: RecordSink): Promise<void> {
    const signal = this.stopping.signal;
    try {
      this.checkpointer = await this.loadCheckpoints(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    this.checkpointer.start(this.context.checkpointIntervalMs);
    while (!signal.aborted) {
      try {
        await this.discoverShards(sink);
      } catch (err) {
        if (signal.aborted) break;
        if (awsErrorName(err) === 'ResourceNotFoundException') {
          this.context.log.error(`Kinesis stream ${JSON.stringify(this.config.streamName)} not found; will look again`, {
            region: this.config.region,
            endpoint: this.config.endpoint,
          });
        } else {
          this.context.log.warn('listing shards failed; will retry', { stream: this.config.streamName, error: err });
        }
      }
      await sleep(this.config.shardDiscoveryIntervalInSeconds * 1000, signal);
    }
    await Promise.all(this.readers.values());
  }

  stop(): void {
    this.stopping.abort();
  }

  async close(): Promise<boolean> {
    const committed = (await this.checkpointer?.stop()) ?? true;
    this.client.destroy();
    return committed;
  }

  /** Waits for Redis rather than starting without checkpoints (which would re-read from the starting position). */
  private async loadCheckpoints(signal: AbortSignal): Promise<Checkpointer> {
    const { redis, deliveryStreamName, log } = this.context;
    const store = new RedisCheckpointStore(redis, deliveryStreamName, this.identity, sequenceOrder, log);
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await store.load();
        const origin = await store.claimOrigin(Date.now());
        return new Checkpointer(store, stored, origin, log);
      } catch (err) {
        if (signal.aborted) throw err;
        log.warn('cannot read checkpoints from Redis yet; retrying', { attempt, error: err });
        await sleep(Math.min(10_000, 500 * attempt), signal);
      }
    }
  }

  private async listShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: this.config.streamName }),
        { abortSignal: this.stopping.signal },
      );
      shards.push(...(page.Shards ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    return shards;
  }

  private async discoverShards(sink: RecordSink): Promise<void> {
    const checkpointer = this.checkpointer!;
    // Shard ids grow with creation: parents are placed before their children.
    const shards = (await this.listShards()).sort((x, y) => (x.ShardId! < y.ShardId! ? -1 : 1));
    this.known = new Map(shards.map((shard) => [shard.ShardId!, shard]));
    for (const shard of shards) {
      const id = shard.ShardId!;
      if (this.readers.has(id) || checkpointer.isShardReadToEnd(id)) continue;
      const resume = this.lastRead.get(id);
      const start: ReadFrom = resume
        ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: resume }
        : startingPoint(
            { shardId: id, parents: parentsOf(shard), closed: !!shard.SequenceNumberRange?.EndingSequenceNumber },
            {
              startingPosition: this.config.startingPosition,
              startingTimestamp: this.config.startingTimestamp,
              origin: checkpointer.origin,
              checkpoint: (shardId) => checkpointer.storedCheckpoint(shardId),
              readFrom: (shardId) => this.readFrom.get(shardId),
            },
          );
      if (!this.readFrom.has(id)) this.readFrom.set(id, start);
      if (start === 'skip') {
        checkpointer.progressFor(id).markReadToEnd();
        continue;
      }
      this.context.log.info('reading shard', { shardId: id, from: start.type });
      const reader = this.readShard(shard, start, sink).catch((err: unknown) => {
        this.context.log.error('shard reader stopped', { shardId: id, error: err });
        this.readers.delete(id); // picked up again at the next discovery
      });
      this.readers.set(id, reader);
    }
  }

  /**
   * Children start once their parents were read to their end (or aged out of the stream). Waiting
   * for the parents' records to be delivered too would stall a split by up to the buffer interval;
   * the parents' records are already in the buffer ahead of the children's, so order holds, and a
   * parent is checkpointed SHARD_END only once all its records reached an end.
   */
  private async waitForParents(shard: Shard): Promise<void> {
    const parents = parentsOf(shard);
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const pending = parents.filter((p) => this.known.has(p) && !this.checkpointer!.isShardReadToEnd(p));
      if (pending.length === 0) return;
      await sleep(250, signal);
    }
  }

  private async readShard(shard: Shard, start: StartingPoint, sink: RecordSink): Promise<void> {
    const shardId = shard.ShardId!;
    const signal = this.stopping.signal;
    const { budget, log } = this.context;
    const checkpointer = this.checkpointer!;
    await this.waitForParents(shard);
    if (signal.aborted) return;
    const progress = checkpointer.progressFor(shardId);
    let iterator = await this.shardIterator(shardId, start);
    let lastCall = 0;
    let failures = 0;
    // A response is reserved before it is asked for. Kinesis never answers more than 10 MiB; with a
    // budget too small to reserve that, the record count is bounded instead, by the largest record
    // this shard has had (at first, Kinesis' 1 MiB limit).
    const reservation = Math.min(MAX_RESPONSE_BYTES, Math.floor(budget.limit / 2));
    let largestRecord = MAX_RECORD_BYTES;
    const limitFor = () => (reservation >= MAX_RESPONSE_BYTES ? this.config.readLimit : Math.max(1, Math.min(this.config.readLimit, Math.floor(reservation / largestRecord))));

    while (!signal.aborted && iterator) {
      const wait = lastCall + MIN_MS_BETWEEN_READS - Date.now();
      if (wait > 0) await sleep(wait, signal);
      if (signal.aborted || !(await budget.reserve(reservation, signal))) break;
      lastCall = Date.now();
      let response;
      try {
        const input: GetRecordsCommandInput = { ShardIterator: iterator, Limit: limitFor() };
        await this.client.send(new GetRecordsCommand(input), { abortSignal: signal });
        response = decodedResponse(input);
        failures = 0;
      } catch (err) {
        budget.give(reservation);
        if (signal.aborted) break;
        const name = awsErrorName(err);
        if (name === 'ExpiredIteratorException') {
          log.info('shard iterator expired; renewing', { shardId });
          const lastRead = this.lastRead.get(shardId);
          iterator = await this.shardIterator(shardId, lastRead ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: lastRead } : start);
          continue;
        }
        failures++;
        const delay = backoff(failures, 250, 10_000);
        if (THROTTLED.has(name ?? '')) log.debug('GetRecords throttled; backing off', { shardId, delayMs: delay });
        else log.warn('GetRecords failed; backing off', { shardId, delayMs: delay, error: err });
        await sleep(delay, signal);
        continue;
      }

      // The records take their own bytes from the budget as the pipeline accepts them.
      budget.give(reservation);
      const count = response.data.length;
      const lag = this.lag.get(shardId) ?? { iteratorAgeMs: 0, millisBehindLatest: 0 };
      lag.millisBehindLatest = response.millisBehindLatest ?? 0;
      lag.iteratorAgeMs = count > 0 ? Date.now() - response.arrivals[count - 1]! : lag.millisBehindLatest;
      this.lag.set(shardId, lag);
      if (count > 0) {
        const { batch } = toSourceRecords(response, shardId, progress, log);
        this.lastRead.set(shardId, response.sequenceNumbers[count - 1]!);
        if (lag.iteratorAgeMs > this.maxIteratorAgeMs) this.maxIteratorAgeMs = lag.iteratorAgeMs;
        if (reservation < MAX_RESPONSE_BYTES) {
          if (largestRecord === MAX_RECORD_BYTES) largestRecord = 1;
          for (const data of response.data) if (data.length > largestRecord) largestRecord = data.length;
        }
        if (batch.length > 0) sink.accept(batch);
      }
      iterator = response.nextShardIterator;
      if (!iterator) {
        log.info('shard read to its end', { shardId });
        progress.markReadToEnd();
        break;
      }
      // Kinesis can answer empty while the shard still has records further on: only idle at the tip.
      if (count === 0 && !(response.millisBehindLatest! > 0)) await sleep(this.config.idleTimeBetweenReadsInMillis, signal);
    }
  }

  private async shardIterator(shardId: string, start: StartingPoint): Promise<string | undefined> {
    const input: GetShardIteratorCommandInput = {
      StreamName: this.config.streamName,
      ShardId: shardId,
      ShardIteratorType: start.type,
    };
    if (start.type === 'AFTER_SEQUENCE_NUMBER') input.StartingSequenceNumber = start.sequenceNumber;
    if (start.type === 'AT_TIMESTAMP') input.Timestamp = start.timestamp;
    const signal = this.stopping.signal;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const out = await this.client.send(new GetShardIteratorCommand(input), { abortSignal: signal });
        return out.ShardIterator;
      } catch (err) {
        if (signal.aborted) break;
        const delay = backoff(attempt, 250, 10_000);
        this.context.log.warn('GetShardIterator failed; backing off', { shardId, delayMs: delay, error: err });
        await sleep(delay, signal);
      }
    }
    return undefined;
  }
}

function parentsOf(shard: Shard): string[] {
  return [shard.ParentShardId, shard.AdjacentParentShardId].filter((p): p is string => !!p);
}

type MutableRecord = { -readonly [K in keyof SourceRecord]: SourceRecord[K] };

/** One read's records, de-aggregated, as one segment of the shard's progress. */
function toSourceRecords(response: DecodedGetRecords, shardId: string, progress: ShardProgress, log: Logger): { batch: SourceRecord[]; segment: Segment } {
  const out: MutableRecord[] = [];
  let bytes = 0;
  const count = response.data.length;
  for (let r = 0; r < count; r++) {
    const data = response.data[r]!;
    const sequenceNumber = response.sequenceNumbers[r]!;
    const approximateArrivalTimestamp = response.arrivals[r]!;
    const users = isAggregated(data) ? deaggregate(data) : undefined;
    if (users === undefined) {
      if (isAggregated(data)) log.warn('record has the KPL magic bytes but is not a valid aggregate; passed on whole', { shardId, sequenceNumber });
      out.push({ data, partitionKey: response.partitionKeys[r]!, shardId, sequenceNumber, subSequenceNumber: 0, approximateArrivalTimestamp, segment: undefined as unknown as Segment });
      bytes += data.length;
      continue;
    }
    for (let i = 0; i < users.length; i++) {
      const user = users[i]!;
      out.push({ data: user.data, partitionKey: user.partitionKey, shardId, sequenceNumber, subSequenceNumber: i, approximateArrivalTimestamp, segment: undefined as unknown as Segment });
      bytes += user.data.length;
    }
  }
  const segment = progress.open(response.sequenceNumbers[count - 1]!, out.length, bytes);
  for (const record of out) record.segment = segment;
  return { batch: out, segment };
}
