/**
 * Lua shared by the lease scripts. A lease is one JSON value per shard in the source's lease hash:
 * { owner?, epoch, expiresAt, parents ("a,b"), state ("open" | "ended"), handOffTo?, handOffAt?,
 * startedFrom? }. Time is Redis' own (TIME), so every worker's expiry is on one clock.
 */
export const NOW_MS = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/** The shard's lease when the worker holds it, open, at that epoch: the fence every state write passes. */
export const HELD_LEASE = `
local function heldLease(leasesKey, shard, worker, epoch)
  local raw = redis.call('HGET', leasesKey, shard)
  if not raw then return nil end
  local lease = cjson.decode(raw)
  if lease.owner ~= worker or lease.epoch ~= tonumber(epoch) or lease.state ~= 'open' then return nil end
  return lease
end
`;

/** A fresh, unowned lease. */
export const NEW_LEASE = `
local function newLease(parents, state)
  return cjson.encode({ epoch = 0, expiresAt = 0, parents = parents, state = state })
end
`;
