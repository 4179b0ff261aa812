/**
 * Lua shared by the lease scripts. A lease is one JSON value per shard in the source's lease hash:
 * { owner?, epoch, expiresAt, parents ("a,b"), state ("open" | "ended"), handOffTo?, handOffAt?,
 * startedFrom? }. Time is Redis' own (TIME), so every worker's expiry is on one clock.
 */
export const NOW_MS = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/** A fresh, unowned lease. */
export const NEW_LEASE = `
local function newLease(parents, state)
  return cjson.encode({ epoch = 0, expiresAt = 0, parents = parents, state = state })
end
`;
