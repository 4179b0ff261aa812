import type { Redis } from 'ioredis';

/** True once Redis answers PING within the time; false when it does not (down, unreachable, refusing). */
export async function redisAnswers(redis: Redis, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([redis.ping().then((answer) => answer === 'PONG', () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where a Redis URL points, without its credentials (for messages). */
export function redisWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'the configured Redis';
  }
}
