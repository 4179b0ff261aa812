import { NOW_MS } from './lease-lua.js';

/**
 * Renews every lease of a worker in one call and beats its heartbeat. A lease is renewed only while
 * its owner and epoch are the caller's: anything else means it was lost.
 * KEYS[1] the leases, KEYS[2] the workers (sorted set: worker → heartbeat expiry, ms).
 * ARGV[1] the worker, ARGV[2] the lease duration in ms, then shard, epoch — repeated.
 * Returns { Redis' time in ms, then per shard "held", "hand-off:<worker>" or "lost" }.
 */
export const renewLeases = {
  name: 'firehoseRenewLeases',
  numberOfKeys: 2,
  lua: `${NOW_MS}
local worker, duration = ARGV[1], tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + duration, worker)
-- Workers silent for a minute past their expiry are forgotten.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60000)
local out = { now }
for i = 3, #ARGV, 2 do
  local shard, epoch = ARGV[i], tonumber(ARGV[i + 1])
  local status = 'lost'
  local raw = redis.call('HGET', KEYS[1], shard)
  if raw then
    local lease = cjson.decode(raw)
    if lease.owner == worker and lease.epoch == epoch and lease.state == 'open' then
      lease.expiresAt = now + duration
      redis.call('HSET', KEYS[1], shard, cjson.encode(lease))
      status = 'held'
      if lease.handOffTo then status = 'hand-off:' .. lease.handOffTo end
    end
  end
  out[#out + 1] = status
end
return out
`,
} as const;
