import { NOW_MS } from './lease-lua.js';

/**
 * Asks a live owner to hand a lease over (balancing): marks it for the requester, unless a hand-off
 * to a live worker is already pending. The owner sees it at its next renewal.
 * KEYS[1] the leases, KEYS[2] the workers.
 * ARGV[1] the requester, ARGV[2] the shard, ARGV[3] the owner the requester saw. 1 if asked.
 */
export const requestHandOff = {
  name: 'firehoseRequestHandOff',
  numberOfKeys: 2,
  lua: `${NOW_MS}
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return 0 end
local lease = cjson.decode(raw)
if lease.state ~= 'open' or lease.owner ~= ARGV[3] or lease.owner == ARGV[1] or lease.expiresAt <= now then return 0 end
if lease.handOffTo then
  local alive = redis.call('ZSCORE', KEYS[2], lease.handOffTo)
  if alive and tonumber(alive) > now then return 0 end
end
lease.handOffTo = ARGV[1]
lease.handOffAt = now
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(lease))
return 1
`,
} as const;
