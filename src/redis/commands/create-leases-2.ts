import { NEW_LEASE } from './lease-lua.js';

/**
 * Creates the leases of shards not yet leased: unowned, epoch 0. A shard whose checkpoint already
 * says SHARD_END (read before leases existed) is created ended.
 * KEYS[1] the leases (shard → lease JSON), KEYS[2] the checkpoints.
 * ARGV: shard, parents ("a,b" or "") — repeated. Returns the number created.
 */
export const createLeases = {
  name: 'firehoseCreateLeases',
  numberOfKeys: 2,
  lua: `${NEW_LEASE}
local created = 0
for i = 1, #ARGV, 2 do
  local shard = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], shard) == 0 then
    local state = 'open'
    if redis.call('HGET', KEYS[2], shard) == 'SHARD_END' then state = 'ended' end
    redis.call('HSET', KEYS[1], shard, newLease(ARGV[i + 1], state))
    created = created + 1
  end
end
return created
`,
} as const;
