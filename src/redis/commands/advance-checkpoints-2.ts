/**
 * Moves shard checkpoints forward, never backwards, never past the end of a shard.
 * KEYS[1] the checkpoints (shard → position as the source writes it),
 * KEYS[2] their sort keys (shard → a string that sorts byte-wise as the positions do; the source's
 * own ordering, so nothing here knows what a position is).
 * ARGV: shard, position, sort key — repeated. The position SHARD_END ends the shard.
 * Returns the number of checkpoints moved.
 */
export const advanceCheckpoints = {
  name: 'firehoseAdvanceCheckpoints',
  numberOfKeys: 2,
  lua: `
local moved = 0
for i = 1, #ARGV, 3 do
  local shard, position, sortKey = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local current = redis.call('HGET', KEYS[1], shard)
  local forward
  if current == false then forward = true
  elseif current == 'SHARD_END' then forward = false
  elseif position == 'SHARD_END' then forward = true
  else
    local currentKey = redis.call('HGET', KEYS[2], shard)
    forward = currentKey == false or sortKey > currentKey
  end
  if forward then
    redis.call('HSET', KEYS[1], shard, position)
    redis.call('HSET', KEYS[2], shard, sortKey)
    moved = moved + 1
  end
end
return moved
`,
} as const;
