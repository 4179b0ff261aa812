import type { Redis } from 'ioredis';
import { ShardProgress, type ProgressListener, type Segment } from './ack.js';
import type { ByteBudget } from './budget.js';
import type { Logger } from './log.js';

/** Stored in place of a sequence number once a closed shard has been read and acknowledged to its end. */
export const SHARD_END = 'SHARD_END';

/** When a delivery stream first started, and whether that is now (no earlier run left a trace). */
export interface Origin {
  readonly startedAt: number;
  readonly firstStart: boolean;
}

export interface CheckpointStore {
  load(deliveryStreamName: string): Promise<Map<string, string>>;
  /** Records `now` as the delivery stream's first start unless an earlier run did; returns the origin. */
  claimOrigin(deliveryStreamName: string, now: number): Promise<Origin>;
  /** Moves each shard's checkpoint forward; never backwards, never past SHARD_END. */
  save(deliveryStreamName: string, checkpoints: ReadonlyMap<string, string>): Promise<void>;
}

/** Keys of one delivery stream share a hash tag, so Redis Cluster keeps them on one slot. */
export const redisKeys = {
  checkpoints: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:checkpoints`,
  origin: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:origin`,
};

// Kinesis sequence numbers are decimal strings without leading zeros: longer is larger, and equal
// lengths compare as text. One script so that two writers can never move a checkpoint backwards.
const advanceCheckpointsLua = `
local moved = 0
for i = 1, #ARGV, 2 do
  local shard, new = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[1], shard)
  local forward
  if cur == false then forward = true
  elseif cur == '${SHARD_END}' then forward = false
  elseif new == '${SHARD_END}' then forward = true
  elseif #new ~= #cur then forward = #new > #cur
  else forward = new > cur end
  if forward then
    redis.call('HSET', KEYS[1], shard, new)
    moved = moved + 1
  end
end
return moved
`;

export class RedisCheckpointStore implements CheckpointStore {
  constructor(private readonly redis: Redis) {
    redis.defineCommand('firehoseAdvanceCheckpoints', { numberOfKeys: 1, lua: advanceCheckpointsLua });
  }

  async load(deliveryStreamName: string): Promise<Map<string, string>> {
    const all = await this.redis.hgetall(redisKeys.checkpoints(deliveryStreamName));
    return new Map(Object.entries(all));
  }

  async claimOrigin(deliveryStreamName: string, now: number): Promise<Origin> {
    const key = redisKeys.origin(deliveryStreamName);
    if ((await this.redis.set(key, String(now), 'NX')) === 'OK') return { startedAt: now, firstStart: true };
    return { startedAt: Number(await this.redis.get(key)), firstStart: false };
  }

  async save(deliveryStreamName: string, checkpoints: ReadonlyMap<string, string>): Promise<void> {
    if (checkpoints.size === 0) return;
    const args: string[] = [];
    for (const [shard, sequence] of checkpoints) args.push(shard, sequence);
    const redis = this.redis as Redis & {
      firehoseAdvanceCheckpoints(key: string, ...args: string[]): Promise<number>;
    };
    await redis.firehoseAdvanceCheckpoints(redisKeys.checkpoints(deliveryStreamName), ...args);
  }
}

/**
 * Owns the ShardProgress of every shard of one delivery stream, returns budget as segments are
 * released, and writes moved checkpoints to the store in batches (every interval and at stop).
 */
export class Checkpointer implements ProgressListener {
  private readonly shards = new Map<string, ShardProgress>();
  private readonly dirty = new Set<ShardProgress>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly deliveryStreamName: string,
    private readonly store: CheckpointStore,
    private readonly stored: ReadonlyMap<string, string>,
    readonly origin: Origin,
    private readonly budget: ByteBudget,
    private readonly log: Logger,
  ) {}

  /** The checkpoint found in the store when the delivery stream started. */
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

  segmentReleased(segment: Segment): void {
    this.budget.give(segment.bytes);
  }

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
        await this.store.save(this.deliveryStreamName, pending);
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

  /** Final write at shutdown; reports whether every checkpoint reached the store. */
  async stop(): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
    return this.dirty.size === 0;
  }
}
