/**
 * Lets a lease go (a clean stop, after the final checkpoint): unowned at once, so another worker
 * takes it at its next renewal instead of waiting for it to expire.
 * KEYS[1] the leases. ARGV[1] the worker, ARGV[2] the shard, ARGV[3] its epoch. 1 if released.
 */
export const releaseLease = {
  name: 'firehoseReleaseLease',
  numberOfKeys: 1,
  lua: `
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return 0 end
local lease = cjson.decode(raw)
if lease.owner ~= ARGV[1] or lease.epoch ~= tonumber(ARGV[3]) then return 0 end
lease.owner = nil
lease.expiresAt = 0
lease.handOffTo = nil
lease.handOffAt = nil
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(lease))
return 1
`,
} as const;
