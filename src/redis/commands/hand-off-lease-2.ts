import { NOW_MS } from './lease-lua.js';

/**
 * The owner hands a lease over once it checkpointed what it held of the shard: to the worker that
 * asked, raising the epoch, or — if that worker is gone — to nobody.
 * KEYS[1] the leases, KEYS[2] the workers.
 * ARGV[1] the owner, ARGV[2] the shard, ARGV[3] its epoch, ARGV[4] the lease duration in ms.
 * Returns the new owner's epoch, 0 when released to nobody, -1 when the caller no longer owned it.
 */
export const handOffLease = {
  name: 'firehoseHandOffLease',
  numberOfKeys: 2,
  lua: `${NOW_MS}
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return -1 end
local lease = cjson.decode(raw)
if lease.owner ~= ARGV[1] or lease.epoch ~= tonumber(ARGV[3]) then return -1 end
local to = lease.handOffTo
local alive = to and redis.call('ZSCORE', KEYS[2], to)
lease.handOffTo = nil
lease.handOffAt = nil
if alive and tonumber(alive) > now then
  lease.owner = to
  lease.epoch = lease.epoch + 1
  lease.expiresAt = now + tonumber(ARGV[4])
else
  lease.owner = nil
  lease.expiresAt = 0
end
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(lease))
if lease.owner then return lease.epoch end
return 0
`,
} as const;
