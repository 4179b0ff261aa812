import { HELD_LEASE } from './lease-lua.js';

/**
 * Exactly-once: records a batch's intent before its upload, fenced by the lease epoch. From then on
 * the batch's contents are fixed: whoever holds the lease next re-forms exactly this range.
 * KEYS[1] the leases, KEYS[2] the intents (shard → intent JSON).
 * ARGV[1] the worker, ARGV[2] the shard, ARGV[3] the epoch the records were read under, ARGV[4] the
 * intent JSON, ARGV[5] its first position, ARGV[6] its last ("sequenceNumber:subSequenceNumber").
 * Returns "recorded", "same" (this range was recorded before: a re-formation), "replaced" (the same
 * first record, another end: the configuration changed), "conflict" (an open intent starts
 * elsewhere) or "fenced" (the lease is not the caller's at that epoch).
 */
export const recordIntent = {
  name: 'firehoseRecordIntent',
  numberOfKeys: 2,
  lua: `${HELD_LEASE}
if not heldLease(KEYS[1], ARGV[2], ARGV[1], ARGV[3]) then return 'fenced' end
local existing = redis.call('HGET', KEYS[2], ARGV[2])
if existing then
  local open = cjson.decode(existing)
  if open.first ~= ARGV[5] then return 'conflict' end
  if open.last == ARGV[6] then return 'same' end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  return 'replaced'
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
return 'recorded'
`,
} as const;
