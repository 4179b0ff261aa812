import type { Redis } from 'ioredis';
import { redisKeys } from '../redis/keys.js';
import { withCommands, type FirehoseRedis } from '../redis/commands/index.js';

export type LeaseState = 'open' | 'ended';

/** A shard's lease as stored: who reads the shard, under which fencing epoch, until when. */
export interface Lease {
  readonly shardId: string;
  readonly owner: string | undefined;
  /** The fencing token: raised each time the lease is taken; every state write carries it. */
  readonly epoch: number;
  /** Redis time, epoch ms; 0 when unowned. */
  readonly expiresAt: number;
  readonly parents: readonly string[];
  readonly state: LeaseState;
  /** A worker asked for it (balancing), since handOffAt (Redis time). */
  readonly handOffTo: string | undefined;
  readonly handOffAt: number | undefined;
  /** On an ended lease: how its reading began ("skip" when it was never read). */
  readonly startedFrom: string | undefined;
}

/** An exactly-once batch recorded before its upload: positions are "sequenceNumber:subSequenceNumber". */
export interface Intent {
  readonly shardId: string;
  readonly first: string;
  readonly last: string;
  readonly key: string;
  readonly configHash: string;
  readonly epoch: number;
}

export interface LeaseView {
  /** Redis' clock when the view was read. */
  readonly now: number;
  readonly leases: readonly Lease[];
  /** Workers whose heartbeat has not expired. */
  readonly workers: readonly string[];
}

/** What ends a shard: how its reading began, and its children, whose leases the end creates. */
export interface ShardEnding {
  readonly from: string;
  readonly children: readonly { id: string; parents: readonly string[] }[];
}

export interface FencedCheckpoint {
  readonly shardId: string;
  readonly epoch: number;
  readonly position: string;
  readonly sortKey: string;
  readonly ending?: ShardEnding | undefined;
}

export type TakeResult = { taken: true; epoch: number; checkpoint: string | undefined } | { taken: false; why: string };

export type Renewal = { now: number; statuses: Map<string, { held: true; handOffTo?: string } | { held: false }> };

/**
 * The leases of one source read by one delivery stream, and its workers' heartbeats: every change
 * is one script (src/redis/commands/*-N.ts), the keys under the delivery stream's hash tag.
 */
export class LeaseTable {
  private readonly redis: FirehoseRedis;
  readonly leasesKey: string;
  readonly workersKey: string;
  private readonly checkpointsKey: string;
  private readonly orderKey: string;
  private readonly intentsKey: string;

  constructor(
    redis: Redis,
    readonly deliveryStreamName: string,
    readonly source: string,
  ) {
    this.redis = withCommands(redis);
    this.leasesKey = redisKeys.leases(deliveryStreamName, source);
    this.workersKey = redisKeys.workers(deliveryStreamName, source);
    this.checkpointsKey = redisKeys.checkpoints(deliveryStreamName, source);
    this.orderKey = redisKeys.checkpointOrder(deliveryStreamName, source);
    this.intentsKey = redisKeys.intents(deliveryStreamName, source);
  }

  /** Leases for shards that have none yet. */
  async create(shards: readonly { id: string; parents: readonly string[] }[]): Promise<number> {
    if (shards.length === 0) return 0;
    const args = shards.flatMap((s) => [s.id, s.parents.join(',')]);
    return Number(await this.redis.firehoseCreateLeases(this.leasesKey, this.checkpointsKey, ...args));
  }

  async take(worker: string, shardId: string, durationMs: number, force = false): Promise<TakeResult> {
    const [epoch, detail] = (await this.redis.firehoseTakeLease(this.leasesKey, this.checkpointsKey, worker, shardId, String(durationMs), force ? 'force' : '')) as [number, string];
    if (epoch === 0) return { taken: false, why: detail };
    return { taken: true, epoch, checkpoint: detail === '' ? undefined : detail };
  }

  async renew(worker: string, durationMs: number, held: readonly { shardId: string; epoch: number }[]): Promise<Renewal> {
    const args = held.flatMap((l) => [l.shardId, String(l.epoch)]);
    const [now, ...statuses] = (await this.redis.firehoseRenewLeases(this.leasesKey, this.workersKey, worker, String(durationMs), ...args)) as [number, ...string[]];
    const out: Renewal['statuses'] = new Map();
    held.forEach((lease, i) => {
      const status = statuses[i]!;
      out.set(lease.shardId, status === 'lost' ? { held: false } : status.startsWith('hand-off:') ? { held: true, handOffTo: status.slice('hand-off:'.length) } : { held: true });
    });
    return { now, statuses: out };
  }

  async release(worker: string, shardId: string, epoch: number): Promise<boolean> {
    return Number(await this.redis.firehoseReleaseLease(this.leasesKey, worker, shardId, String(epoch))) === 1;
  }

  async requestHandOff(requester: string, shardId: string, owner: string): Promise<boolean> {
    return Number(await this.redis.firehoseRequestHandOff(this.leasesKey, this.workersKey, requester, shardId, owner)) === 1;
  }

  /** The new owner's epoch, 0 when released to nobody, -1 when the caller no longer owned it. */
  async handOff(worker: string, shardId: string, epoch: number, durationMs: number): Promise<number> {
    return Number(await this.redis.firehoseHandOffLease(this.leasesKey, this.workersKey, worker, shardId, String(epoch), String(durationMs)));
  }

  /** Writes checkpoints fenced by their epochs; returns the shards refused. */
  async checkpoint(worker: string, entries: readonly FencedCheckpoint[]): Promise<string[]> {
    if (entries.length === 0) return [];
    const args = [worker];
    for (const e of entries) args.push(e.shardId, String(e.epoch), e.position, e.sortKey, e.ending ? JSON.stringify({ from: e.ending.from, children: e.ending.children.map((c) => ({ id: c.id, parents: c.parents.join(',') })) }) : '');
    return (await this.redis.firehoseCheckpointLeases(this.leasesKey, this.checkpointsKey, this.orderKey, ...args)) as string[];
  }

  async leave(worker: string): Promise<void> {
    await this.redis.zrem(this.workersKey, worker);
  }

  /** Every lease and the live workers, as of one moment of Redis' clock. */
  async view(): Promise<LeaseView> {
    const [[, time], [, raw], [, workers]] = (await this.redis
      .multi()
      .time()
      .hgetall(this.leasesKey)
      .zrange(this.workersKey, 0, -1, 'WITHSCORES')
      .exec()) as [[unknown, [string, string]], [unknown, Record<string, string>], [unknown, string[]]];
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const live: string[] = [];
    for (let i = 0; i < workers.length; i += 2) if (Number(workers[i + 1]) > now) live.push(workers[i]!);
    const leases = Object.entries(raw)
      .map(([shardId, json]) => parseLease(shardId, json))
      .sort((a, b) => (a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : 0));
    return { now, leases, workers: live };
  }

  /** Exactly-once: records a batch's intent under the epoch its records were read under. */
  async recordIntent(worker: string, epoch: number, intent: Intent): Promise<'recorded' | 'same' | 'replaced' | 'conflict' | 'fenced'> {
    return (await this.redis.firehoseRecordIntent(this.leasesKey, this.intentsKey, worker, intent.shardId, String(epoch), JSON.stringify(intent), intent.first, intent.last)) as 'recorded';
  }

  /** Exactly-once: the checkpoint moves to the batch's last record and its intent goes, fenced. */
  async commitBatch(worker: string, epoch: number, shardId: string, first: string, lastSequenceNumber: string, sortKey: string): Promise<'committed' | 'fenced'> {
    return (await this.redis.firehoseCommitBatch(this.leasesKey, this.intentsKey, this.checkpointsKey, this.orderKey, worker, shardId, String(epoch), first, lastSequenceNumber, sortKey)) as 'committed';
  }

  /** The shard's open intent: a batch recorded and perhaps uploaded, not committed. */
  async openIntent(shardId: string): Promise<Intent | undefined> {
    const raw = await this.redis.hget(this.intentsKey, shardId);
    return raw ? (JSON.parse(raw) as Intent) : undefined;
  }

  /** The owner and epoch of each shard's lease, as stored now. */
  async owners(shardIds: readonly string[]): Promise<Map<string, { owner: string | undefined; epoch: number }>> {
    const out = new Map<string, { owner: string | undefined; epoch: number }>();
    if (shardIds.length === 0) return out;
    const raw = await this.redis.hmget(this.leasesKey, ...shardIds);
    shardIds.forEach((id, i) => {
      if (raw[i]) out.set(id, parseLease(id, raw[i]!));
    });
    return out;
  }

  /** The checkpoints of the leased shards (for `firehose leases`). */
  async checkpoints(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.checkpointsKey);
  }
}

function parseLease(shardId: string, json: string): Lease {
  const l = JSON.parse(json) as { owner?: string; epoch: number; expiresAt: number; parents?: string; state: LeaseState; handOffTo?: string; handOffAt?: number; startedFrom?: string };
  return {
    shardId,
    owner: l.owner,
    epoch: l.epoch,
    expiresAt: l.expiresAt,
    parents: l.parents ? l.parents.split(',') : [],
    state: l.state,
    handOffTo: l.handOffTo,
    handOffAt: l.handOffAt,
    startedFrom: l.startedFrom,
  };
}
