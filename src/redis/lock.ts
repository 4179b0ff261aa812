import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { withCommands } from './commands/index.js';

/** Held by another: who, as its holder wrote it. */
export class LockHeld extends Error {}

/**
 * A lock in Redis with a lifetime, renewed while held, so a holder that dies frees it within the
 * lifetime. Only its holder can renew or release it (token compared inside a script).
 */
export class RedisLock {
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly redis: Redis,
    readonly key: string,
    private readonly token: string,
    private readonly ttlMs: number,
  ) {}

  static async acquire(redis: Redis, key: string, what: string, ttlMs = 30_000): Promise<RedisLock> {
    const token = `${hostname()}:${process.pid}:${new Date().toISOString()}:${randomUUID()}`;
    if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') {
      const holder = (await redis.get(key)) ?? 'someone';
      throw new LockHeld(`${what} is already running (held by ${holder.split(':').slice(0, 2).join(':')} since ${holder.split(':').slice(2, -1).join(':')}); wait for it to finish`);
    }
    const lock = new RedisLock(redis, key, token, ttlMs);
    lock.timer = setInterval(() => void withCommands(redis).firehoseRenewLock(key, token, String(ttlMs)).catch(() => undefined), Math.floor(ttlMs / 3));
    lock.timer.unref();
    return lock;
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await withCommands(this.redis).firehoseReleaseLock(this.key, this.token);
  }
}
