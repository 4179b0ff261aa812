import { ADVANCE_CHECKPOINT } from './checkpoint-lua.js';

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
  lua: `${ADVANCE_CHECKPOINT}
local moved = 0
for i = 1, #ARGV, 3 do
  if advanceCheckpoint(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1], ARGV[i + 2]) then moved = moved + 1 end
end
return moved
`,
} as const;
