import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, type GetRecordsCommandInput, type GetShardIteratorCommandInput, type KinesisClient, type Shard } from '@aws-sdk/client-kinesis';
import { ShardProgress, type ProgressListener } from '../../ack.js';
import { awsErrorName } from '../../aws.js';
import { backoff } from '../../backoff.js';
import type { ByteBudget } from '../../budget.js';
import { sleep } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { RecordSink, Source } from '../../records.js';
import { PendingSaves, type ReplayProgress } from '../../replay/progress.js';
import { RateLimit } from '../../replay/rate.js';
import { decodedResponse } from '../kinesis/get-records.js';
import { toSourceRecords } from '../kinesis/source.js';

/** Where a Kinesis replay starts: a time, or the record with this sequence number (and, on the other shards, that record's arrival time). */
export type KinesisFrom = { readonly timestamp: number } | { readonly sequenceNumber: string };

export interface KinesisWindowOptions {
  readonly client: KinesisClient;
  readonly streamName: string;
  readonly from: KinesisFrom;
  /** Records that arrived before this time (epoch ms); by default when the replay started: what the stream held then. */
  readonly until: number;
  readonly progress: ReplayProgress;
  readonly maxRecordsPerSecond?: number | undefined;
  readonly budget: ByteBudget;
  readonly log: Logger;
}

export interface KinesisWindowCounts {
  shards: number;
  shardsDone: number;
  records: number;
  bytes: number;
}

/** Kinesis allows 5 GetRecords a second per shard; a replay beside the live readers keeps to 2. */
const READ_INTERVAL_MS = 500;

/**
 * A delivery stream's own Kinesis stream, re-read from a time (within retention) up to another, as
 * a source: a replay. It runs beside the stream's live readers with positions of its own — every
 * shard (open or closed) read from the window's start, each record handed on with its original
 * shard and sequence numbers — and touches neither their checkpoints nor their leases. A shard's
 * progress is saved as the last sequence number up to which every record reached an end.
 */
export class KinesisWindowSource implements Source, ProgressListener {
  readonly identity: string;
  readonly counts: KinesisWindowCounts = { shards: 0, shardsDone: 0, records: 0, bytes: 0 };
  private readonly shards = new Map<ShardProgress, { bytes: Map<string, number>; records: Map<string, number>; saved: boolean }>();
  private readonly saves = new PendingSaves((err, what) => this.options.log.error('saving replay progress failed; a later run reads these records again', { ...what, error: err }));
  private readonly stopping = new AbortController();
  private readonly rate: RateLimit | undefined;
  private readToEnd = false;

  constructor(private readonly options: KinesisWindowOptions) {
    this.identity = `kinesis-window/${options.streamName}`;
    this.rate = options.maxRecordsPerSecond ? new RateLimit(options.maxRecordsPerSecond) : undefined;
  }

  get outstandingSegments(): number {
    let n = 0;
    for (const shard of this.shards.keys()) n += shard.outstandingSegments;
    return n;
  }

  get stopped(): boolean {
    return !this.readToEnd;
  }

  status(): Readonly<Record<string, unknown>> {
    return { source: this.identity, ...this.counts };
  }

  async run(sink: RecordSink): Promise<void> {
    const shards = await this.listShards();
    this.counts.shards = shards.length;
    const start = await this.startTime(shards);
    // A child is read once its parents are read to their end (within the window), as the live
    // readers do: a partition key's records come out in the order they went in, across a reshard.
    const reads = new Map<string, Promise<void>>();
    const read = (shard: Shard): Promise<void> => {
      const id = shard.ShardId!;
      let reading = reads.get(id);
      if (!reading) {
        const parents = [shard.ParentShardId, shard.AdjacentParentShardId].flatMap((p) => {
          const parent = p ? shards.find((s) => s.ShardId === p) : undefined;
          return parent ? [read(parent)] : [];
        });
        reading = Promise.all(parents).then(() => this.readShard(id, start, sink));
        reads.set(id, reading);
      }
      return reading;
    };
    await Promise.all(shards.map(read));
    this.readToEnd = !this.stopping.signal.aborted;
  }

  private async listShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const page = await this.options.client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.options.streamName }), { abortSignal: this.stopping.signal });
      shards.push(...(page.Shards ?? []));
      token = page.NextToken;
    } while (token);
    return shards;
  }

  /** The window's start on every shard: the time given, or the arrival of the record with the sequence number given. */
  private async startTime(shards: readonly Shard[]): Promise<{ timestamp: number; shardId?: string; sequenceNumber?: string }> {
    const { from, client, streamName } = this.options;
    if ('timestamp' in from) return { timestamp: from.timestamp };
    for (const shard of shards) {
      try {
        const { ShardIterator } = await client.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: shard.ShardId!, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: from.sequenceNumber }));
        const input: GetRecordsCommandInput = { ShardIterator, Limit: 1 };
        await client.send(new GetRecordsCommand(input));
        const first = decodedResponse(input);
        if (first.data.length > 0) return { timestamp: first.arrivals[0]!, shardId: shard.ShardId!, sequenceNumber: from.sequenceNumber };
      } catch (err) {
        if (awsErrorName(err) !== 'InvalidArgumentException') throw err;
      }
    }
    throw new Error(`no shard of ${streamName} holds a record with sequence number ${from.sequenceNumber} (past retention, or not of this stream)`);
  }

  private async readShard(shardId: string, start: { timestamp: number; shardId?: string; sequenceNumber?: string }, sink: RecordSink): Promise<void> {
    const { client, streamName, until, progress, budget, log } = this.options;
    const signal = this.stopping.signal;
    if (signal.aborted) return;
    if (progress.isDone(shardId)) {
      this.counts.shardsDone++;
      return;
    }
    const resumeAfter = progress.position(shardId);
    const input: GetShardIteratorCommandInput = { StreamName: streamName, ShardId: shardId, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(start.timestamp) };
    if (resumeAfter) Object.assign(input, { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: resumeAfter, Timestamp: undefined });
    else if (start.shardId === shardId) Object.assign(input, { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: start.sequenceNumber, Timestamp: undefined });
    let iterator = (await client.send(new GetShardIteratorCommand(input), { abortSignal: signal })).ShardIterator;
    const shard = new ShardProgress(shardId, resumeAfter, this);
    const state = { bytes: new Map<string, number>(), records: new Map<string, number>(), saved: false };
    this.shards.set(shard, state);
    let failures = 0;
    while (iterator && !signal.aborted) {
      await budget.whenAvailable(signal);
      if (signal.aborted) break;
      const request: GetRecordsCommandInput = { ShardIterator: iterator, Limit: 10_000 };
      let response;
      try {
        await client.send(new GetRecordsCommand(request), { abortSignal: signal });
        response = decodedResponse(request);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        log.warn('replay: GetRecords failed; backing off', { shardId, error: err });
        await sleep(backoff(failures, 250, 10_000), signal);
        continue;
      }
      // Records that arrived at or after `until` end this shard's window.
      let inWindow = response.data.length;
      for (let i = 0; i < response.data.length; i++) {
        if (response.arrivals[i]! >= until) {
          inWindow = i;
          break;
        }
      }
      const ended = inWindow < response.data.length;
      if (inWindow > 0) {
        const window = ended ? { ...response, data: response.data.slice(0, inWindow), sequenceNumbers: response.sequenceNumbers.slice(0, inWindow), arrivals: response.arrivals.slice(0, inWindow), partitionKeys: response.partitionKeys.slice(0, inWindow) } : response;
        const { batch, segment } = toSourceRecords(window, shardId, shard, log);
        state.bytes.set(segment.lastSequenceNumber, segment.bytes);
        state.records.set(segment.lastSequenceNumber, segment.records);
        await this.rate?.take(batch.length, signal);
        this.counts.records += batch.length;
        this.counts.bytes += segment.bytes;
        if (batch.length > 0) sink.accept(batch);
      }
      // The window ends at `until`, at the shard's end, or at the tip (nothing newer to wait for).
      const atTip = response.data.length === 0 && !(response.millisBehindLatest! > 0);
      if (ended || atTip || !response.nextShardIterator) break;
      iterator = response.nextShardIterator;
      await sleep(READ_INTERVAL_MS, signal);
    }
    if (!signal.aborted) shard.markReadToEnd();
  }

  segmentReleased(): void {}

  /** A shard's records reached an end further on: its position is saved (or the shard is done). */
  progressed(shard: ShardProgress): void {
    const state = this.shards.get(shard);
    if (!state || state.saved) return;
    const { progress } = this.options;
    const position = shard.checkpoint;
    let records = 0;
    let bytes = 0;
    for (const [sequence, n] of state.records) {
      if (position === undefined || compareSequence(sequence, position) > 0) break;
      records += n;
      bytes += state.bytes.get(sequence) ?? 0;
      state.records.delete(sequence);
      state.bytes.delete(sequence);
    }
    const complete = shard.complete;
    if (complete) state.saved = true;
    this.saves.track(
      (async () => {
        if (position !== undefined) await progress.savePosition(shard.shardId, position, records, bytes);
        if (complete) {
          await progress.objectDone(shard.shardId);
          this.counts.shardsDone++;
        }
      })(),
      { shardId: shard.shardId },
    );
  }

  stop(): void {
    this.stopping.abort();
  }

  close(): Promise<boolean> {
    return this.saves.settled();
  }
}

function compareSequence(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}
