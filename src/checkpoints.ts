import type { Redis } from 'ioredis';
import { ShardProgress, type ProgressListener, type Segment } from './ack.js';
import type { Logger } from './log.js';
import type { ShardEnding } from './leases/table.js';
import { withCommands } from './redis/commands/index.js';
import { redisKeys } from './redis/keys.js';

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

export { redisKeys } from './redis/keys.js';

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

/** A checkpoint to write, with the lease epoch it was read under (the write is refused for a stale one). */
export interface CheckpointEntry {
  readonly shardId: string;
  readonly epoch: number;
  /** A position, or SHARD_END. */
  readonly position: string;
  /** With SHARD_END: how the shard's reading began, and its children. */
  readonly ending?: ShardEnding | undefined;
}

export interface CheckpointWriter {
  /** Writes the checkpoints; resolves to the shards whose write was refused (their lease is no longer this worker's). */
  write(entries: readonly CheckpointEntry[]): Promise<readonly string[]>;
}

export interface CheckpointEvents {
  /** A write refused by fencing: the shard's lease is gone. */
  refused?(shardId: string): void;
  /** SHARD_END was written: the shard's lease ended. */
  ended?(shardId: string): void;
}

interface Tracked {
  readonly progress: ShardProgress;
  readonly epoch: number;
  ending?: ShardEnding;
}

/**
 * Owns the ShardProgress of every shard this worker reads, one per lease taken, and writes moved
 * checkpoints in batches (every interval and at close), each under the epoch of the lease it was
 * read under. A shard forgotten (its lease lost or handed over) keeps its records flowing to their
 * ends, but nothing of it is checkpointed here any more.
 */
export class Checkpointer implements ProgressListener {
  private readonly shards = new Map<string, Tracked>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly writer: CheckpointWriter,
    private readonly log: Logger,
    private readonly events: CheckpointEvents = {},
  ) {}

  /** Starts tracking a shard read under a lease, from its stored checkpoint. */
  track(shardId: string, epoch: number, checkpoint: string | undefined): ShardProgress {
    const progress = new ShardProgress(shardId, checkpoint === SHARD_END ? undefined : checkpoint, this);
    this.shards.set(shardId, { progress, epoch });
    this.dirty.delete(shardId);
    return progress;
  }

  /** What a shard's end will record: set before the shard is marked read to its end. */
  endWith(shardId: string, ending: ShardEnding): void {
    const tracked = this.shards.get(shardId);
    if (tracked) tracked.ending = ending;
  }

  /** The epoch a shard's progress was read under, while it is the tracked one (undefined: forgotten). */
  epochOf(progress: ShardProgress): number | undefined {
    const tracked = this.shards.get(progress.shardId);
    return tracked?.progress === progress ? tracked.epoch : undefined;
  }

  progress(shardId: string): ShardProgress | undefined {
    return this.shards.get(shardId)?.progress;
  }

  forget(shardId: string): void {
    this.shards.delete(shardId);
    this.dirty.delete(shardId);
  }

  /** Reads whose records have not all reached an end. */
  get outstandingSegments(): number {
    let n = 0;
    for (const { progress } of this.shards.values()) n += progress.outstandingSegments;
    return n;
  }

  /** Each shard's current checkpoint, as it stands in memory. */
  current(): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const [id, { progress }] of this.shards) out[id] = progress.complete ? SHARD_END : progress.checkpoint;
    return out;
  }

  segmentReleased(_segment: Segment): void {}

  progressed(shard: ShardProgress): void {
    // A forgotten lease's progress still hears its records end: nothing of it is written.
    if (this.shards.get(shard.shardId)?.progress === shard) this.dirty.add(shard.shardId);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Writes every moved checkpoint; a failed write keeps them pending for the next attempt. */
  flush(): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (this.dirty.size === 0) return;
      const pending: CheckpointEntry[] = [];
      for (const shardId of this.dirty) {
        const tracked = this.shards.get(shardId);
        if (!tracked) continue;
        const { progress, epoch, ending } = tracked;
        if (progress.complete) pending.push({ shardId, epoch, position: SHARD_END, ending: ending ?? { from: 'unknown', children: [] } });
        else if (progress.checkpoint !== undefined) pending.push({ shardId, epoch, position: progress.checkpoint });
      }
      this.dirty.clear();
      let refused: readonly string[];
      try {
        refused = await this.writer.write(pending);
      } catch (err) {
        for (const { shardId } of pending) if (this.shards.has(shardId)) this.dirty.add(shardId);
        this.log.warn('checkpoint write failed; will retry', { error: err });
        throw err;
      }
      this.log.debug('checkpointed', { shards: Object.fromEntries(pending.map((e) => [e.shardId, e.position])) });
      for (const shardId of refused) {
        if (!this.shards.has(shardId)) continue;
        this.log.warn('checkpoint refused: the shard\'s lease is no longer this worker\'s; it stops reading the shard', { shardId });
        this.forget(shardId);
        this.events.refused?.(shardId);
      }
      for (const { shardId, position } of pending) {
        if (position !== SHARD_END || refused.includes(shardId)) continue;
        this.forget(shardId);
        this.events.ended?.(shardId);
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
