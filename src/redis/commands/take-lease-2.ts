import { NOW_MS } from './lease-lua.js';

/**
 * Takes a lease: when it is unowned, expired or already the taker's (a restart under the same
 * worker id), or — forced — when the taker asked for it to be handed off and the owner did not
 * within one lease duration. The epoch, the fencing token, is raised on every take. A child is
 * never taken before each of its leased parents ended.
 * KEYS[1] the leases, KEYS[2] the checkpoints.
 * ARGV[1] the worker, ARGV[2] the shard, ARGV[3] the lease duration in ms, ARGV[4] "force" or "".
 * Returns { epoch, checkpoint or "" } when taken, { 0, why } when not.
 */
export const takeLease = {
  name: 'firehoseTakeLease',
  numberOfKeys: 2,
  lua: `${NOW_MS}
local worker, shard, duration = ARGV[1], ARGV[2], tonumber(ARGV[3])
local raw = redis.call('HGET', KEYS[1], shard)
if not raw then return { 0, 'unknown' } end
local lease = cjson.decode(raw)
if lease.state == 'ended' then return { 0, 'ended' } end
for parent in string.gmatch(lease.parents, '[^,]+') do
  local parentLease = redis.call('HGET', KEYS[1], parent)
  if parentLease and cjson.decode(parentLease).state ~= 'ended' then return { 0, 'parents' } end
end
local free = lease.owner == nil or lease.owner == worker or lease.expiresAt <= now
if not free then
  local overdue = lease.handOffTo == worker and now >= lease.handOffAt + duration
  if not (ARGV[4] == 'force' and overdue) then return { 0, 'owned' } end
end
lease.owner = worker
lease.epoch = lease.epoch + 1
lease.expiresAt = now + duration
lease.handOffTo = nil
lease.handOffAt = nil
redis.call('HSET', KEYS[1], shard, cjson.encode(lease))
return { lease.epoch, redis.call('HGET', KEYS[2], shard) or '' }
`,
} as const;
