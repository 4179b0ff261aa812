import type { Redis } from 'ioredis';
import { ShardProgress, type ProgressListener, type Segment } from './ack.js';
import type { Logger } from './log.js';
import { withCommands } from './redis/commands/index.js';

/** Stored in place of a position once a closed shard has been read and acknowledged to its end. */
export const SHARD_END = 'SHARD_END';

/** When a source was first read by a delivery stream, and whether that is now (no earlier run left a trace). */
export interface Origin {
  readonly startedAt: number;
  readonly firstStart: boolean;
}

/** How a source's positions sort: the checkpoint script compares sort keys byte-wise, knowing nothing else. */
export interface PositionOrder {
  sortKey(position: string): string;
}

/** The checkpoints of one source read by one delivery stream. */
export interface CheckpointStore {
  load(): Promise<Map<string, string>>;
  /** Records `now` as the first start unless an earlier run did; returns the origin. */
  claimOrigin(now: number): Promise<Origin>;
  /** Moves each shard's checkpoint forward; never backwards, never past SHARD_END. */
  save(checkpoints: ReadonlyMap<string, string>): Promise<void>;
}

/**
 * Keys of one delivery stream share a hash tag, so Redis Cluster keeps them on one slot.
 * Checkpoints belong to the source's identity: a delivery stream pointed at another stream never
 * inherits the old one's positions.
 */
export const redisKeys = {
  checkpoints: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:checkpoints:${source}`,
  checkpointOrder: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:checkpoint-order:${source}`,
  origin: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:origin:${source}`,
  /** Every source identity this delivery stream has read. */
  sources: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:sources`,
  /** Before checkpoints were keyed by source (0.1): adopted once by the first source. */
  legacyCheckpoints: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:checkpoints`,
  legacyOrigin: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:origin`,
};

export class RedisCheckpointStore implements CheckpointStore {
  constructor(
    private readonly redis: Redis,
    private readonly deliveryStreamName: string,
    private readonly source: string,
    private readonly order: PositionOrder,
    private readonly log: Logger,
  ) {}

  private key(kind: 'checkpoints' | 'checkpointOrder' | 'origin'): string {
    return redisKeys[kind](this.deliveryStreamName, this.source);
  }

  async load(): Promise<Map<string, string>> {
    const name = this.deliveryStreamName;
    const known = await this.redis.smembers(redisKeys.sources(name));
    if (!known.includes(this.source)) {
      if (known.length === 0) await this.adoptLegacy();
      else {
        this.log.warn('this delivery stream now reads another source: it starts at its configured starting position; the checkpoints of the earlier sources are kept, unused', {
          source: this.source,
          earlierSources: known,
        });
      }
      await this.redis.sadd(redisKeys.sources(name), this.source);
    }
    return new Map(Object.entries(await this.redis.hgetall(this.key('checkpoints'))));
  }

  /** Checkpoints written before they were keyed by source become the first source's. */
  private async adoptLegacy(): Promise<void> {
    const legacy = await this.redis.hgetall(redisKeys.legacyCheckpoints(this.deliveryStreamName));
    const origin = await this.redis.get(redisKeys.legacyOrigin(this.deliveryStreamName));
    if (Object.keys(legacy).length === 0 && origin === null) return;
    await this.save(new Map(Object.entries(legacy)));
    if (origin !== null) await this.redis.set(this.key('origin'), origin, 'NX');
    await this.redis.del(redisKeys.legacyCheckpoints(this.deliveryStreamName), redisKeys.legacyOrigin(this.deliveryStreamName));
    this.log.info('adopted checkpoints written before they were keyed by source', { source: this.source, shards: Object.keys(legacy).length });
  }

  async claimOrigin(now: number): Promise<Origin> {
    const key = this.key('origin');
    if ((await this.redis.set(key, String(now), 'NX')) === 'OK') return { startedAt: now, firstStart: true };
    return { startedAt: Number(await this.redis.get(key)), firstStart: false };
  }

  async save(checkpoints: ReadonlyMap<string, string>): Promise<void> {
    if (checkpoints.size === 0) return;
    const args: string[] = [];
    for (const [shard, position] of checkpoints) args.push(shard, position, position === SHARD_END ? '' : this.order.sortKey(position));
    await withCommands(this.redis).firehoseAdvanceCheckpoints(this.key('checkpoints'), this.key('checkpointOrder'), ...args);
  }
}

/** Every source's checkpoints of a delivery stream, as stored (for `firehose` commands and tests). */
export async function storedCheckpoints(redis: Redis, deliveryStreamName: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const source of await redis.smembers(redisKeys.sources(deliveryStreamName))) {
    out[source] = await redis.hgetall(redisKeys.checkpoints(deliveryStreamName, source));
  }
  return out;
}

/**
 * Owns the ShardProgress of every shard of one source and writes moved checkpoints to the store in
 * batches (every interval and at close).
 */
export class Checkpointer implements ProgressListener {
  private readonly shards = new Map<string, ShardProgress>();
  private readonly dirty = new Set<ShardProgress>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: CheckpointStore,
    private readonly stored: ReadonlyMap<string, string>,
    readonly origin: Origin,
    private readonly log: Logger,
  ) {}

  /** The checkpoint found in the store when the source started. */
  storedCheckpoint(shardId: string): string | undefined {
    return this.stored.get(shardId);
  }

  /** The shard's records have all been handed on, in this run or (SHARD_END) an earlier one. */
  isShardReadToEnd(shardId: string): boolean {
    return this.shards.get(shardId)?.isReadToEnd ?? this.stored.get(shardId) === SHARD_END;
  }

  progressFor(shardId: string): ShardProgress {
    let progress = this.shards.get(shardId);
    if (!progress) {
      const stored = this.stored.get(shardId);
      progress = new ShardProgress(shardId, stored === SHARD_END ? undefined : stored, this);
      this.shards.set(shardId, progress);
    }
    return progress;
  }

  /** Reads whose records have not all reached an end. */
  get outstandingSegments(): number {
    let n = 0;
    for (const shard of this.shards.values()) n += shard.outstandingSegments;
    return n;
  }

  /** Each shard's current checkpoint, as it stands in memory. */
  current(): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const [id, shard] of this.shards) out[id] = shard.complete ? SHARD_END : shard.checkpoint;
    return out;
  }

  segmentReleased(_segment: Segment): void {}

  progressed(shard: ShardProgress): void {
    this.dirty.add(shard);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Writes every moved checkpoint; a failed write keeps them pending for the next attempt. */
  flush(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (this.dirty.size === 0) return;
      const pending = new Map<string, string>();
      for (const shard of this.dirty) {
        const value = shard.complete ? SHARD_END : shard.checkpoint;
        if (value !== undefined) pending.set(shard.shardId, value);
      }
      this.dirty.clear();
      try {
        await this.store.save(pending);
        this.log.debug('checkpointed', { shards: Object.fromEntries(pending) });
      } catch (err) {
        for (const id of pending.keys()) this.dirty.add(this.shards.get(id)!);
        this.log.warn('checkpoint write failed; will retry', { error: err });
        throw err;
      }
    });
    const result = this.saving;
    this.saving = this.saving.catch(() => undefined);
    return result.catch(() => undefined);
  }

  /** Final write; reports whether every checkpoint reached the store. */
  async stop(): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    return this.dirty.size === 0;
  }
}
