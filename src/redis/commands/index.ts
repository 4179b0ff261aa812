import type { Redis } from 'ioredis';
import { advanceCheckpoints } from './advance-checkpoints-2.js';
import { checkpointLeases } from './checkpoint-leases-3.js';
import { commitBatch } from './commit-batch-4.js';
import { createLeases } from './create-leases-2.js';
import { handOffLease } from './hand-off-lease-2.js';
import { recordIntent } from './record-intent-2.js';
import { releaseLease } from './release-lease-1.js';
import { releaseLock } from './release-lock-1.js';
import { renewLeases } from './renew-leases-2.js';
import { renewLock } from './renew-lock-1.js';
import { requestHandOff } from './request-hand-off-2.js';
import { takeLease } from './take-lease-2.js';

/** Every read-modify-write on Redis is one of these scripts (one file each, named with its key count). */
const commands = [
  advanceCheckpoints,
  renewLock,
  releaseLock,
  createLeases,
  takeLease,
  renewLeases,
  releaseLease,
  requestHandOff,
  handOffLease,
  checkpointLeases,
  recordIntent,
  commitBatch,
] as const;

type Command = (...keysThenArgs: string[]) => Promise<unknown>;
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
