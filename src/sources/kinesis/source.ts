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
import { performance } from 'node:perf_hooks';
import { Checkpointer, RedisCheckpointStore, SHARD_END, type CheckpointWriter, type Origin, type PositionOrder } from '../../checkpoints.js';
import { LeaseCoordinator, type HeldLease, type LeaseHolder, type LeaseStats } from '../../leases/coordinator.js';
import { LeaseTable, type Lease, type LeaseView } from '../../leases/table.js';
import { sleep } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { BatchRange, RecordPosition, RecordSink, Source, SourceRecord } from '../../records.js';
import type { SourceContext } from '../../source.js';
import type { KinesisSourceConfig } from './config.js';
import { decodedResponse, decodeGetRecordsInPlace, fromSdkOutput, MalformedResponse, readGenerally, type DecodedGetRecords } from './get-records.js';
import { deaggregate, isAggregated } from './kpl.js';
import { startingPoint, type ReadFrom, type StartingFacts, type StartingPoint } from './starting-point.js';

/**
 * Kinesis allows 5 GetRecords calls per second per shard, counted where they arrive. Spacing calls
 * exactly 200 ms apart lets network jitter put six in one second; 210 ms leaves 50 ms of slack.
 */
const MIN_MS_BETWEEN_READS = 210;
/** Kinesis' largest GetRecords response, and its largest record. */
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const MAX_RECORD_BYTES = 1024 * 1024;
/** How long a shard's reads go to the SDK's deserializer after the byte decoder declined one. */
const READ_BY_SDK_FOR_MS = 60_000;
/** A GetRecords round trip, and a little more, before a reader that has not read counts as falling behind. */
const STALE_READ_GRACE_MS = 2_000;

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

/** How a shard's reading began, as its ended lease records it (children of a LATEST-skipped parent honour LATEST too). */
function startLabel(start: ReadFrom): string {
  if (start === 'skip') return 'skip';
  return start.type === 'AT_TIMESTAMP' ? `AT_TIMESTAMP:${start.timestamp.getTime()}` : start.type;
}

/** What an ended parent's lease says of how it was read, as the starting-point rules ask it. */
function parentFacts(view: LeaseView): Pick<StartingFacts, 'checkpoint' | 'readFrom'> & { leased: Map<string, Lease> } {
  const leased = new Map(view.leases.map((l) => [l.shardId, l]));
  return {
    leased,
    checkpoint: (shardId) => {
      const lease = leased.get(shardId);
      if (lease?.state !== 'ended' || lease.startedFrom === 'skip' || lease.startedFrom?.startsWith('AT_TIMESTAMP:')) return undefined;
      return SHARD_END;
    },
    readFrom: (shardId) => {
      const from = leased.get(shardId)?.startedFrom;
      if (from === 'skip') return 'skip';
      if (from?.startsWith('AT_TIMESTAMP:')) return { type: 'AT_TIMESTAMP', timestamp: new Date(Number(from.slice('AT_TIMESTAMP:'.length))) };
      return undefined;
    },
  };
}

/**
 * Reads the shards of a Kinesis stream this worker holds leases for: a reader per lease, new shards
 * given leases by a periodic ListShards, children leased only once their parents ended (so across
 * workers a parent's records come first). Leases: src/leases/. Where a shard starts:
 * starting-point.ts.
 */
export class KinesisSource implements Source, LeaseHolder {
  readonly identity: string;
  private readonly client: KinesisClient;
  private readonly table: LeaseTable;
  private checkpointer: Checkpointer | undefined;
  private coordinator: LeaseCoordinator | undefined;
  private origin: Origin | undefined;
  private sink: RecordSink | undefined;
  private readonly stopping = new AbortController();
  private readonly readers = new Map<string, Promise<void>>();
  /** The shards of the latest listing. */
  private known = new Map<string, Shard>();
  /** Per shard, as of its last read: how old its newest record was, and how far behind the tip it is. */
  /** Per shard, as of its last read; shardStatus() ages it while no read happens. */
  private readonly lag = new Map<string, { iteratorAgeMs: number; millisBehindLatest: number; readAt: number }>();
  /**
   * Records read under a lease that was lost or handed over before they reached an end: the next
   * owner reads them again (default mode is at-least-once; this bounds and counts the duplicates).
   */
  recordsInFlightAtLeaseLoss = 0;
  /** Checkpoint writes the lease script refused (a stale epoch). */
  fencedWritesRefused = 0;

  constructor(
    private readonly config: KinesisSourceConfig,
    private readonly context: SourceContext,
    client?: KinesisClient,
  ) {
    this.identity = kinesisIdentity(config);
    this.client = client ?? createKinesisClient(config);
    this.table = new LeaseTable(context.redis, context.deliveryStreamName, this.identity);
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

  /** ThrottledGetRecords: GetRecords calls Kinesis refused for the shard's read limits. */
  throttledGetRecords = 0;

  /** GetRecords responses the byte decoder declined, read again by the SDK's deserializer. */
  responsesReadBySdk = 0;
  /** Shards whose responses the SDK reads until then (performance.now()), after one was declined. */
  private readonly readBySdkUntil = new Map<string, number>();

  get activeShards(): string[] {
    return [...this.readers.keys()];
  }

  get outstandingSegments(): number {
    return this.checkpointer?.outstandingSegments ?? 0;
  }

  get leaseStats(): LeaseStats | undefined {
    return this.coordinator?.stats;
  }

  status(): Readonly<Record<string, unknown>> {
    return {
      source: this.identity,
      workerId: this.context.workerId,
      activeShards: this.activeShards.length,
      maxIteratorAgeMs: this.maxIteratorAgeMs,
      throttledGetRecords: this.throttledGetRecords,
      responsesReadBySdk: this.responsesReadBySdk,
      shards: this.shardStatus(),
      leases: { ...this.coordinator?.stats, recordsInFlightAtLeaseLoss: this.recordsInFlightAtLeaseLoss, fencedWritesRefused: this.fencedWritesRefused },
    };
  }

  /** Per shard this worker holds: its lease epoch, its lag as of its last read, and its checkpoint in memory. */
  private shardStatus(): Record<string, { epoch: number; iteratorAgeMs: number; millisBehindLatest: number; checkpoint: string | undefined }> {
    const checkpoints = this.checkpointer?.current() ?? {};
    const out: Record<string, { epoch: number; iteratorAgeMs: number; millisBehindLatest: number; checkpoint: string | undefined }> = {};
    for (const lease of this.coordinator?.leases ?? []) {
      const lag = this.lag.get(lease.shardId);
      // A reader that has not read for longer than it idles between reads (waiting for budget,
      // backing off, stalled) falls further behind every second: say so, so an alert on the age
      // fires while it waits and clears once it reads again.
      const stale = lag ? Math.max(0, Date.now() - lag.readAt - this.config.idleTimeBetweenReadsInMillis - STALE_READ_GRACE_MS) : 0;
      out[lease.shardId] = {
        epoch: lease.epoch,
        iteratorAgeMs: (lag?.iteratorAgeMs ?? 0) + stale,
        millisBehindLatest: (lag?.millisBehindLatest ?? 0) + (lag && lag.millisBehindLatest > 0 ? stale : 0),
        checkpoint: checkpoints[lease.shardId],
      };
    }
    return out;
  }

  async probe(signal: AbortSignal): Promise<void> {
    await this.client.send(new ListShardsCommand({ StreamName: this.config.streamName, MaxResults: 1 }), { abortSignal: signal });
  }

  async run(sink: RecordSink): Promise<void> {
    const signal = this.stopping.signal;
    this.sink = sink;
    const { log, workerId, leaseDurationMs, checkpointIntervalMs } = this.context;
    try {
      this.origin = await this.prepare(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    const coordinator = new LeaseCoordinator(this.table, workerId, leaseDurationMs, this, log);
    this.coordinator = coordinator;
    const writer: CheckpointWriter = {
      write: (entries) =>
        this.table.checkpoint(
          workerId,
          entries.map((e) => ({ ...e, sortKey: e.position === SHARD_END ? '' : sequenceOrder.sortKey(e.position) })),
        ),
    };
    this.checkpointer = new Checkpointer(writer, log, {
      refused: (shardId) => {
        this.fencedWritesRefused++;
        const lease = coordinator.leases.find((l) => l.shardId === shardId);
        if (lease) coordinator.markLost(lease, 'a checkpoint write was refused');
      },
      ended: (shardId) => coordinator.finish(shardId),
    });
    this.checkpointer.start(checkpointIntervalMs);
    while (!signal.aborted) {
      try {
        await this.discoverShards();
        // Leases exist for every listed shard before any is taken.
        coordinator.start();
      } catch (err) {
        if (signal.aborted) break;
        if (awsErrorName(err) === 'ResourceNotFoundException') {
          log.error(`Kinesis stream ${JSON.stringify(this.config.streamName)} not found; will look again`, {
            region: this.config.region,
            endpoint: this.config.endpoint,
          });
        } else {
          log.warn('listing shards failed; will retry', { stream: this.config.streamName, error: err });
        }
      }
      await sleep(this.config.shardDiscoveryIntervalInSeconds * 1000, signal);
    }
    await Promise.all(this.readers.values());
  }

  /** Stops reading; the leases stay held (renewed) until close(), while what was read is delivered. */
  stop(): void {
    this.stopping.abort();
    this.coordinator?.stopTaking();
  }

  /** The final checkpoint, then every lease released so the other workers take the shards at once. */
  async close(): Promise<boolean> {
    const committed = (await this.checkpointer?.stop()) ?? true;
    await this.coordinator?.close();
    this.client.destroy();
    return committed;
  }

  /**
   * Checkpoints written before leases or by an earlier source are adopted, and the delivery
   * stream's first start recorded. Waits for Redis rather than starting without them (which would
   * re-read from the starting position).
   */
  private async prepare(signal: AbortSignal): Promise<Origin> {
    const { redis, deliveryStreamName, log } = this.context;
    const store = new RedisCheckpointStore(redis, deliveryStreamName, this.identity, sequenceOrder, log);
    for (let attempt = 1; ; attempt++) {
      try {
        await store.load();
        return await store.claimOrigin(Date.now());
      } catch (err) {
        if (signal.aborted) throw err;
        log.warn('cannot read checkpoints from Redis yet; retrying', { attempt, error: err });
        await sleep(Math.min(10_000, 500 * attempt), signal);
      }
    }
  }

  private async listShards(signal: AbortSignal = this.stopping.signal): Promise<Shard[]> {
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: this.config.streamName }),
        { abortSignal: signal },
      );
      shards.push(...(page.Shards ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    return shards;
  }

  private async discoverShards(): Promise<void> {
    const shards = await this.listShards();
    this.known = new Map(shards.map((shard) => [shard.ShardId!, shard]));
    await this.table.create(shards.map((shard) => ({ id: shard.ShardId!, parents: parentsOf(shard) })));
  }

  async disowned(records: readonly SourceRecord[]): Promise<ReadonlySet<SourceRecord>> {
    const out = new Set<SourceRecord>();
    const epochs = new Map<ShardProgress, number | undefined>();
    for (const record of records) {
      const progress = record.segment.shard;
      if (progress && !epochs.has(progress)) epochs.set(progress, this.checkpointer?.epochOf(progress));
    }
    const asStored = await this.table.owners([...new Set([...epochs.keys()].map((p) => p.shardId))]);
    const held = new Set<ShardProgress>();
    for (const [progress, epoch] of epochs) {
      const lease = asStored.get(progress.shardId);
      if (epoch !== undefined && lease?.owner === this.context.workerId && lease.epoch === epoch) held.add(progress);
    }
    for (const record of records) if (record.segment.shard && !held.has(record.segment.shard)) out.add(record);
    if (out.size > 0) this.fencedWritesRefused++;
    return out;
  }

  async recordIntent(range: BatchRange, key: string, configHash: string): Promise<'recorded' | 'fenced'> {
    const epoch = range.progress ? this.checkpointer?.epochOf(range.progress) : undefined;
    if (epoch === undefined) return 'fenced';
    const position = (p: RecordPosition) => `${p.sequenceNumber}:${p.subSequenceNumber}`;
    const answer = await this.table.recordIntent(this.context.workerId, epoch, { shardId: range.shardId, first: position(range.first), last: position(range.last), key, configHash, epoch });
    if (answer === 'fenced') this.fencedWritesRefused++;
    if (answer === 'conflict') this.context.log.error('an open intent of this shard starts at another record than the batch formed: the batch is not written, its records are read again after a restart', { shardId: range.shardId, key });
    return answer === 'fenced' || answer === 'conflict' ? 'fenced' : 'recorded';
  }

  async commitBatch(range: BatchRange): Promise<'committed' | 'fenced'> {
    const epoch = range.progress ? this.checkpointer?.epochOf(range.progress) : undefined;
    if (epoch === undefined) return 'fenced';
    const first = `${range.first.sequenceNumber}:${range.first.subSequenceNumber}`;
    const answer = await this.table.commitBatch(this.context.workerId, epoch, range.shardId, first, range.last.sequenceNumber, sequenceOrder.sortKey(range.last.sequenceNumber));
    if (answer === 'fenced') this.fencedWritesRefused++;
    return answer;
  }

  /** Exactly-once: an intent left open by a crash or a lease move is re-formed from the same records, first. */
  private async reformOpenIntent(shardId: string, signal: AbortSignal): Promise<void> {
    if (!this.sink?.reform) return;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const intent = await this.table.openIntent(shardId);
        if (intent) {
          const [sequenceNumber, sub] = intent.last.split(':');
          this.context.log.info('re-forming the batch an earlier attempt recorded', { shardId, key: intent.key, last: intent.last });
          this.sink.reform({ shardId, last: { sequenceNumber: sequenceNumber!, subSequenceNumber: Number(sub) }, key: intent.key, configHash: intent.configHash });
        }
        return;
      } catch (err) {
        this.context.log.warn('cannot read the shard\'s open intent yet; retrying', { shardId, error: err });
        await sleep(backoff(attempt, 250, 10_000), signal);
      }
    }
  }

  // LeaseHolder: what the coordinator tells this source.

  acquired(lease: HeldLease, checkpoint: string | undefined, view: LeaseView): void {
    if (this.stopping.signal.aborted || !this.checkpointer || !this.origin) return;
    const shardId = lease.shardId;
    const progress = this.checkpointer.track(shardId, lease.epoch, checkpoint);
    const shard = this.known.get(shardId);
    const parents = shard ? parentsOf(shard) : [...(view.leases.find((l) => l.shardId === shardId)?.parents ?? [])];
    const facts = parentFacts(view);
    const start = startingPoint(
      { shardId, parents: parents.filter((p) => facts.leased.has(p)), closed: !!shard?.SequenceNumberRange?.EndingSequenceNumber },
      {
        startingPosition: this.config.startingPosition,
        startingTimestamp: this.config.startingTimestamp,
        origin: this.origin,
        checkpoint: (id) => (id === shardId ? checkpoint : facts.checkpoint(id)),
        readFrom: (id) => facts.readFrom(id),
      },
    );
    if (start === 'skip') {
      this.checkpointer.endWith(shardId, { from: 'skip', children: [] });
      progress.markReadToEnd();
      return;
    }
    this.context.log.info('reading shard', { shardId, from: start.type, epoch: lease.epoch });
    const reader = this.readShard(lease, progress, start).catch((err: unknown) => {
      this.context.log.error('shard reader stopped', { shardId, error: err });
    });
    this.readers.set(shardId, reader);
    void reader.finally(() => {
      if (this.readers.get(shardId) === reader) this.readers.delete(shardId);
    });
  }

  lost(lease: HeldLease, _why: string): void {
    // Exactly-once: what the shard's buffer holds was read under the lost epoch; sealed now, it is fenced, never written.
    this.sink?.sealShard?.(lease.shardId, 'hand-off');
    const progress = this.checkpointer?.progress(lease.shardId);
    if (progress) this.recordsInFlightAtLeaseLoss += progress.outstandingRecords;
    this.checkpointer?.forget(lease.shardId);
  }

  handOffRequested(lease: HeldLease, to: string): void {
    void this.handOver(lease, to).catch((err: unknown) => this.context.log.warn('hand-off failed; the asker takes the lease when it is overdue', { shardId: lease.shardId, error: err }));
  }

  /** Cooperative hand-off: stop reading, deliver what is held of the shard, checkpoint it, then hand the lease over. */
  private async handOver(lease: HeldLease, to: string): Promise<void> {
    const { shardId } = lease;
    const { log, leaseDurationMs } = this.context;
    log.info('handing a lease over', { shardId, to });
    lease.abort.abort();
    await this.readers.get(shardId);
    const progress = this.checkpointer?.progress(shardId);
    if (progress && progress.outstandingSegments > 0) {
      if (!this.sink?.sealShard?.(shardId, 'hand-off')) this.sink?.flush('hand-off');
      // Within most of a lease duration, or the asker forces the take.
      const deadline = performance.now() + leaseDurationMs * 0.75;
      while (progress.outstandingSegments > 0 && !lease.lost && performance.now() < deadline) await sleep(50);
    }
    await this.checkpointer?.flush();
    if (lease.lost) return;
    if (progress) this.recordsInFlightAtLeaseLoss += progress.outstandingRecords;
    this.checkpointer?.forget(shardId);
    await this.coordinator?.completeHandOff(lease);
  }

  private async readShard(lease: HeldLease, progress: ShardProgress, start: StartingPoint): Promise<void> {
    const shardId = lease.shardId;
    const signal = AbortSignal.any([this.stopping.signal, lease.abort.signal]);
    const { budget, log } = this.context;
    const sink = this.sink!;
    let lastRead: string | undefined;
    const resumeFrom = (): StartingPoint => (lastRead ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: lastRead } : start);
    await this.reformOpenIntent(shardId, signal);
    let iterator = await this.shardIterator(shardId, start, signal);
    let lastCall = 0;
    let failures = 0;
    // A response is reserved before it is asked for. Kinesis never answers more than 10 MiB; with a
    // budget too small to reserve that, the record count is bounded instead, by the largest record
    // this shard has had (at first, Kinesis' 1 MiB limit).
    const reservation = Math.min(MAX_RESPONSE_BYTES, Math.floor(budget.limit / 2));
    let largestRecord = MAX_RECORD_BYTES;
    const limitFor = () => (reservation >= MAX_RESPONSE_BYTES ? this.config.readLimit : Math.max(1, Math.min(this.config.readLimit, Math.floor(reservation / largestRecord))));

    while (!signal.aborted && iterator) {
      if (!lease.valid) {
        if (!(await lease.whenValid(signal))) break;
        // What was read while the lease could not be known is dropped: read it again.
        iterator = await this.shardIterator(shardId, resumeFrom(), signal);
        if (!iterator) break;
      }
      const wait = lastCall + MIN_MS_BETWEEN_READS - Date.now();
      if (wait > 0) await sleep(wait, signal);
      if (signal.aborted || !(await budget.reserve(reservation, signal))) break;
      lastCall = Date.now();
      let read: ReadSummary;
      try {
        read = await this.readAndHandOn(shardId, { ShardIterator: iterator, Limit: limitFor() }, reservation, signal, lease, progress);
        failures = 0;
      } catch (err) {
        // Not a failed read: the pipeline refused its records. Retrying the read would leave the
        // records it did take holding the shard's checkpoint back; this ends the reader, as before.
        if (err instanceof HandOnError) throw err.cause;
        if (signal.aborted) break;
        const name = awsErrorName(err);
        if (name === 'ExpiredIteratorException') {
          log.info('shard iterator expired; renewing', { shardId });
          iterator = await this.shardIterator(shardId, resumeFrom(), signal);
          continue;
        }
        failures++;
        const delay = backoff(failures, 250, 10_000);
        if (THROTTLED.has(name ?? '')) {
          this.throttledGetRecords++;
          log.debug('GetRecords throttled; backing off', { shardId, delayMs: delay });
        } else log.warn('GetRecords failed; backing off', { shardId, delayMs: delay, error: err });
        await sleep(delay, signal);
        continue;
      }
      if (signal.aborted) break;
      // Read while this worker could not know its lease was still its own (paused past it): never
      // handed on. Reading resumes after the last record handed on once a renewal proves the lease
      // (or the lease's next owner reads them).
      if (!read.handedOn) continue;
      const { count, nextShardIterator, millisBehindLatest } = read;
      if (read.lastSequenceNumber !== undefined) lastRead = read.lastSequenceNumber;
      if (reservation < MAX_RESPONSE_BYTES && count > 0) largestRecord = largestRecord === MAX_RECORD_BYTES ? read.largestRecord : Math.max(largestRecord, read.largestRecord);
      iterator = nextShardIterator;
      if (!iterator) {
        log.info('shard read to its end', { shardId });
        this.checkpointer!.endWith(shardId, { from: startLabel(start), children: await this.childrenOf(shardId) });
        progress.markReadToEnd();
        // Children are leased once the parent's end is checkpointed, which waits for its records'
        // delivery: seal the buffers now rather than hold the children back a whole interval.
        sink.flush('shard-end');
        break;
      }
      // Kinesis can answer empty while the shard still has records further on: only idle at the tip.
      if (count === 0 && !(millisBehindLatest! > 0)) await sleep(this.config.idleTimeBetweenReadsInMillis, signal);
    }
  }

  /**
   * One GetRecords, its records handed on. The response lives only in this call: a reader that kept
   * it while waiting for its next turn kept the buffer all its records' bytes are views of (10 MB a
   * shard, not counted once the records were copied on).
   */
  private async readAndHandOn(shardId: string, input: GetRecordsCommandInput, reservation: number, signal: AbortSignal, lease: HeldLease, progress: ShardProgress): Promise<ReadSummary> {
    let response: DecodedGetRecords;
    try {
      response = await this.getRecords(shardId, input, signal);
    } finally {
      // Given back before the records are handed on, in the same turn: they take their own bytes.
      this.context.budget.unreserve(reservation);
    }
    const count = response.data.length;
    const summary: ReadSummary = { handedOn: false, count, nextShardIterator: response.nextShardIterator, millisBehindLatest: response.millisBehindLatest, largestRecord: 1, lastSequenceNumber: undefined };
    if (signal.aborted || !lease.valid) return summary;
    summary.handedOn = true;
    if (count > 0) {
      summary.lastSequenceNumber = response.sequenceNumbers[count - 1]!;
      for (const data of response.data) if (data.length > summary.largestRecord) summary.largestRecord = data.length;
    }
    try {
      this.handOn(shardId, response, progress);
    } catch (err) {
      throw new HandOnError(err);
    }
    return summary;
  }

  /**
   * One GetRecords, decoded from its bytes; a response the byte decoder declines is asked for again
   * (its iterator still reads the same records) and read by the SDK's deserializer, which either
   * reads it or fails the read as any malformed answer does (backed off, retried). The shard's next
   * reads go the SDK's way for a while: a server that writes its JSON so would otherwise cost two
   * calls of the shard's five a second for every read.
   */
  private async getRecords(shardId: string, input: GetRecordsCommandInput, signal: AbortSignal): Promise<DecodedGetRecords> {
    const bySdk = async () => fromSdkOutput(await this.client.send(new GetRecordsCommand(readGenerally({ ...input })), { abortSignal: signal }));
    if (performance.now() < (this.readBySdkUntil.get(shardId) ?? 0)) return bySdk();
    try {
      await this.client.send(new GetRecordsCommand(input), { abortSignal: signal });
      return decodedResponse(input);
    } catch (err) {
      if (!(err instanceof MalformedResponse) || signal.aborted) throw err;
      this.responsesReadBySdk++;
      this.readBySdkUntil.set(shardId, performance.now() + READ_BY_SDK_FOR_MS);
      this.context.log.warn('GetRecords response the byte decoder declined; reading it again through the SDK', { shardId, reason: err.message });
      return bySdk();
    }
  }

  /** One response's records, handed on; its lag noted. */
  private handOn(shardId: string, response: DecodedGetRecords, progress: ShardProgress): void {
    const count = response.data.length;
    const lag = this.lag.get(shardId) ?? { iteratorAgeMs: 0, millisBehindLatest: 0, readAt: 0 };
    lag.readAt = Date.now();
    lag.millisBehindLatest = response.millisBehindLatest ?? 0;
    lag.iteratorAgeMs = count > 0 ? Date.now() - response.arrivals[count - 1]! : lag.millisBehindLatest;
    this.lag.set(shardId, lag);
    if (count === 0) return;
    if (lag.iteratorAgeMs > this.maxIteratorAgeMs) this.maxIteratorAgeMs = lag.iteratorAgeMs;
    const { batch } = toSourceRecords(response, shardId, progress, this.context.log);
    if (batch.length > 0) this.sink!.accept(batch);
  }

  /** A closed shard's children, from a fresh listing (kinesalite sends no ChildShards), whose leases its end creates. */
  private async childrenOf(shardId: string): Promise<{ id: string; parents: string[] }[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.discoverShards();
        break;
      } catch (err) {
        if (this.stopping.signal.aborted) break;
        this.context.log.warn('listing shards for the children of a closed shard failed; retrying', { shardId, error: err });
        await sleep(backoff(attempt, 250, 10_000), this.stopping.signal);
      }
    }
    return [...this.known.values()].filter((s) => parentsOf(s).includes(shardId)).map((s) => ({ id: s.ShardId!, parents: parentsOf(s) }));
  }

  private async shardIterator(shardId: string, start: StartingPoint, signal: AbortSignal): Promise<string | undefined> {
    const input: GetShardIteratorCommandInput = {
      StreamName: this.config.streamName,
      ShardId: shardId,
      ShardIteratorType: start.type,
    };
    if (start.type === 'AFTER_SEQUENCE_NUMBER') input.StartingSequenceNumber = start.sequenceNumber;
    if (start.type === 'AT_TIMESTAMP') input.Timestamp = start.timestamp;
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

/** Thrown while a read's records were handed on, after the read itself succeeded. */
class HandOnError extends Error {
  constructor(cause: unknown) {
    super('handing records on failed', { cause });
  }
}

interface ReadSummary {
  /** False when the read was aborted or the lease could not be proved: nothing was handed on. */
  handedOn: boolean;
  readonly count: number;
  readonly nextShardIterator: string | undefined;
  readonly millisBehindLatest: number | undefined;
  largestRecord: number;
  lastSequenceNumber: string | undefined;
}

type MutableRecord = { -readonly [K in keyof SourceRecord]: SourceRecord[K] };

/** One read's records, de-aggregated, as one segment of the shard's progress. */
export function toSourceRecords(response: DecodedGetRecords, shardId: string, progress: ShardProgress, log: Logger): { batch: SourceRecord[]; segment: Segment } {
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
