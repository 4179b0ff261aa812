/**
 * Lua shared by the scripts that move checkpoints: forward only, never past SHARD_END, compared by
 * the source's sort keys (so nothing here knows what a position is). Returns true when it moved.
 */
export const ADVANCE_CHECKPOINT = `
local function advanceCheckpoint(checkpointsKey, orderKey, shard, position, sortKey)
  local current = redis.call('HGET', checkpointsKey, shard)
  local forward
  if current == false then forward = true
  elseif current == 'SHARD_END' then forward = false
  elseif position == 'SHARD_END' then forward = true
  else
    local currentKey = redis.call('HGET', orderKey, shard)
    forward = currentKey == false or sortKey > currentKey
  end
  if forward then
    redis.call('HSET', checkpointsKey, shard, position)
    redis.call('HSET', orderKey, shard, sortKey)
  end
  return forward
end
`;
