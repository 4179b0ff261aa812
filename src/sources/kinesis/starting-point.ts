import type { Origin } from '../../checkpoints.js';

export type StartingPoint =
  | { type: 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string }
  | { type: 'TRIM_HORIZON' | 'LATEST' }
  | { type: 'AT_TIMESTAMP'; timestamp: Date };

/** Where reading a shard began in this run; 'skip': a closed shard that LATEST leaves unread. */
export type ReadFrom = StartingPoint | 'skip';

export interface ShardFacts {
  readonly shardId: string;
  readonly parents: readonly string[];
  /** Closed by a resharding: it has an ending sequence number. */
  readonly closed: boolean;
}

export interface StartingFacts {
  readonly startingPosition: 'LATEST' | 'TRIM_HORIZON' | 'AT_TIMESTAMP';
  readonly startingTimestamp?: string | undefined;
  readonly origin: Origin;
  /** The checkpoint an earlier run stored for a shard. */
  checkpoint(shardId: string): string | undefined;
  /** Where this run began reading a shard, if it did. */
  readFrom(shardId: string): ReadFrom | undefined;
}

/**
 * Where a shard's reading starts.
 * - After its checkpoint, when an earlier run left one.
 * - A child whose parent was read — in an earlier run, or in this one from a position that covers
 *   everything after the split — starts at its beginning (TRIM_HORIZON): every record of it comes
 *   after what was read of its parents. A parent read from a timestamp passes that on.
 * - Otherwise the configured starting position: a child whose parents were not read (LATEST
 *   skipped them, or they aged out) honours it too. LATEST holds only on the delivery stream's
 *   first start: a later start that finds a shard without a checkpoint (a crash before the first
 *   checkpoint write) reads AT_TIMESTAMP of that first start, so nothing read then is skipped; and
 *   a closed shard has no "latest", so LATEST skips it.
 */
export function startingPoint(shard: ShardFacts, facts: StartingFacts): ReadFrom {
  const checkpoint = facts.checkpoint(shard.shardId);
  if (checkpoint) return { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: checkpoint };
  for (const parent of shard.parents) {
    if (facts.checkpoint(parent) !== undefined) return { type: 'TRIM_HORIZON' };
    const parentFrom = facts.readFrom(parent);
    if (parentFrom === undefined || parentFrom === 'skip') continue;
    return parentFrom.type === 'AT_TIMESTAMP' ? parentFrom : { type: 'TRIM_HORIZON' };
  }
  switch (facts.startingPosition) {
    case 'TRIM_HORIZON':
      return { type: 'TRIM_HORIZON' };
    case 'AT_TIMESTAMP':
      return { type: 'AT_TIMESTAMP', timestamp: new Date(facts.startingTimestamp!) };
    case 'LATEST':
      if (!facts.origin.firstStart) return { type: 'AT_TIMESTAMP', timestamp: new Date(facts.origin.startedAt) };
      return shard.closed ? 'skip' : { type: 'LATEST' };
  }
}
