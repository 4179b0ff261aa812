import { ADVANCE_CHECKPOINT } from './checkpoint-lua.js';
import { HELD_LEASE, NEW_LEASE } from './lease-lua.js';

/**
 * Moves the checkpoints of leased shards, fenced: a shard's checkpoint moves only for the owner of
 * its lease at the epoch it read under, never backwards, never past the shard's end. SHARD_END ends
 * the lease and, in the same call, creates its children's leases.
 * KEYS[1] the leases, KEYS[2] the checkpoints, KEYS[3] their sort keys (the source's ordering, so
 * nothing here knows what a position is).
 * ARGV[1] the worker, then shard, epoch, position, sort key, ending — repeated. The ending, given
 * with SHARD_END, is JSON: { "from": how the shard's reading began, "children": [{ "id", "parents" }] }.
 * Returns the shards refused (their lease is no longer the caller's at that epoch).
 */
export const checkpointLeases = {
  name: 'firehoseCheckpointLeases',
  numberOfKeys: 3,
  lua: `${NEW_LEASE}${HELD_LEASE}${ADVANCE_CHECKPOINT}
local worker = ARGV[1]
local refused = {}
for i = 2, #ARGV, 5 do
  local shard, epoch, position, sortKey, ending = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local lease = heldLease(KEYS[1], shard, worker, epoch)
  if not lease then
    refused[#refused + 1] = shard
  else
    advanceCheckpoint(KEYS[2], KEYS[3], shard, position, sortKey)
    if position == 'SHARD_END' then
      local ended = cjson.decode(ending)
      lease.state = 'ended'
      lease.owner = nil
      lease.expiresAt = 0
      lease.handOffTo = nil
      lease.handOffAt = nil
      lease.startedFrom = ended.from
      redis.call('HSET', KEYS[1], shard, cjson.encode(lease))
      for _, child in ipairs(ended.children) do
        if redis.call('HEXISTS', KEYS[1], child.id) == 0 then
          redis.call('HSET', KEYS[1], child.id, newLease(child.parents, 'open'))
        end
      end
    end
  end
end
return refused
`,
} as const;
