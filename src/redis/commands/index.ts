import type { Redis } from 'ioredis';
import { advanceCheckpoints } from './advance-checkpoints-2.js';
import { releaseLock } from './release-lock-1.js';
import { renewLock } from './renew-lock-1.js';

/** Every read-modify-write on Redis is one of these scripts (one file each, named with its key count). */
const commands = [advanceCheckpoints, renewLock, releaseLock] as const;

type Command = (...keysThenArgs: string[]) => Promise<number>;
export type FirehoseRedis = Redis & Record<(typeof commands)[number]['name'], Command>;

/** The same connection, with the scripts defined on it (once). */
export function withCommands(redis: Redis): FirehoseRedis {
  const defined = redis as Redis & { firehoseCommandsDefined?: boolean };
  if (!defined.firehoseCommandsDefined) {
    for (const { name, numberOfKeys, lua } of commands) redis.defineCommand(name, { numberOfKeys, lua });
    defined.firehoseCommandsDefined = true;
  }
  return redis as FirehoseRedis;
}
