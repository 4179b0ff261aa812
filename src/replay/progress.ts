import type { Redis } from 'ioredis';

/**
 * A replay's progress in Redis, beside its target delivery stream's keys (one hash tag): which
 * archived objects have every record of theirs at an end, and whether the replay finished. Running
 * the same replay again skips those objects; at most the objects in flight when it stopped are
 * delivered again. Nothing here touches the target's live checkpoints.
 */
export class ReplayProgress {
  private readonly stateKey: string;
  private readonly doneKey: string;
  private readonly upToKey: string;
  private readonly positionsKey: string;
  private positions = new Map<string, string>();
  private done = new Set<string>();
  private upTo = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    readonly targetStream: string,
    readonly id: string,
  ) {
    this.stateKey = `{fh:${targetStream}}:replay:${id}`;
    this.doneKey = `{fh:${targetStream}}:replay:${id}:done`;
    this.upToKey = `{fh:${targetStream}}:replay:${id}:up-to`;
    this.positionsKey = `{fh:${targetStream}}:replay:${id}:positions`;
  }

  /** What an earlier run left: its state, and the objects it finished. */
  async load(): Promise<{ state: 'new' | 'running' | 'finished'; records: number; objects: number; finishedAt?: string }> {
    const [state, done, upTo, positions] = await Promise.all([this.redis.hgetall(this.stateKey), this.redis.smembers(this.doneKey), this.redis.hgetall(this.upToKey), this.redis.hgetall(this.positionsKey)]);
    this.positions = new Map(Object.entries(positions));
    this.done = new Set(done);
    this.upTo = new Map(Object.entries(upTo).map(([key, n]) => [key, Number(n)]));
    return {
      state: (state.state as 'running' | 'finished' | undefined) ?? 'new',
      records: Number(state.records ?? 0),
      objects: done.length,
      ...(state.finishedAt ? { finishedAt: state.finishedAt } : {}),
    };
  }

  async start(description: Record<string, string>): Promise<void> {
    await this.redis.hset(this.stateKey, { ...description, state: 'running', startedAt: new Date().toISOString() });
  }

  isDone(objectKey: string): boolean {
    return this.done.has(objectKey);
  }

  /** How many of the object's records of the window an earlier run brought to an end, in order. */
  doneUpTo(objectKey: string): number {
    return this.upTo.get(objectKey) ?? 0;
  }

  /** The object's first `count` records of the window, and `records` more than before, reached an end. */
  async objectUpTo(objectKey: string, count: number, records: number, bytes: number): Promise<void> {
    this.upTo.set(objectKey, count);
    await this.redis.multi().hset(this.upToKey, objectKey, count).hincrby(this.stateKey, 'records', records).hincrby(this.stateKey, 'bytes', bytes).exec();
  }

  /** Every record of the object's window reached an end (delivered, error output or DLQ). */
  async objectDone(objectKey: string): Promise<void> {
    this.done.add(objectKey);
    await this.redis.multi().sadd(this.doneKey, objectKey).hdel(this.upToKey, objectKey).exec();
  }

  /** A Kinesis replay: the last sequence number of the shard whose records, and all before it, reached an end. */
  position(shardId: string): string | undefined {
    return this.positions.get(shardId);
  }

  async savePosition(shardId: string, sequenceNumber: string, records: number, bytes: number): Promise<void> {
    this.positions.set(shardId, sequenceNumber);
    await this.redis.multi().hset(this.positionsKey, shardId, sequenceNumber).hincrby(this.stateKey, 'records', records).hincrby(this.stateKey, 'bytes', bytes).exec();
  }

  async finish(): Promise<void> {
    await this.redis.hset(this.stateKey, { state: 'finished', finishedAt: new Date().toISOString() });
  }
}

/**
 * Progress writes under way: a source's close() waits for them, and says whether any failed (its
 * records are then replayed again by a later run; nothing is lost, some may come twice).
 */
export class PendingSaves {
  private readonly pending = new Set<Promise<void>>();
  private failed = false;

  constructor(private readonly onError: (err: unknown, what: Record<string, unknown>) => void) {}

  track(saving: Promise<void>, what: Record<string, unknown>): void {
    const tracked = saving
      .catch((err: unknown) => {
        this.failed = true;
        this.onError(err, what);
      })
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  /** Resolves once every save settled: true when all of them were written. */
  async settled(): Promise<boolean> {
    while (this.pending.size > 0) await Promise.all(this.pending);
    return !this.failed;
  }
}
