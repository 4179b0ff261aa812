import { ADVANCE_CHECKPOINT } from './checkpoint-lua.js';
import { HELD_LEASE } from './lease-lua.js';

/**
 * Exactly-once: commits an uploaded batch — the shard's checkpoint moves to the batch's last record
 * and its intent is deleted, in one call, fenced by the lease epoch. Never moves a checkpoint backwards.
 * KEYS[1] the leases, KEYS[2] the intents, KEYS[3] the checkpoints, KEYS[4] their sort keys.
 * ARGV[1] the worker, ARGV[2] the shard, ARGV[3] the epoch, ARGV[4] the batch's first position
 * ("sequenceNumber:subSequenceNumber"), ARGV[5] its last sequence number, ARGV[6] that one's sort key.
 * Returns "committed" or "fenced".
 */
export const commitBatch = {
  name: 'firehoseCommitBatch',
  numberOfKeys: 4,
  lua: `${ADVANCE_CHECKPOINT}${HELD_LEASE}
if not heldLease(KEYS[1], ARGV[2], ARGV[1], ARGV[3]) then return 'fenced' end
local intent = redis.call('HGET', KEYS[2], ARGV[2])
if intent and cjson.decode(intent).first == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[2]) end
advanceCheckpoint(KEYS[3], KEYS[4], ARGV[2], ARGV[5], ARGV[6])
return 'committed'
`,
} as const;
