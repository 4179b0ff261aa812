/**
 * Exactly-once: commits an uploaded batch — the shard's checkpoint moves to the batch's last record
 * and its intent is deleted, in one call, fenced by the lease epoch. Never moves a checkpoint backwards.
 * KEYS[1] the leases, KEYS[2] the intents, KEYS[3] the checkpoints, KEYS[4] their sort keys.
 * ARGV[1] the worker, ARGV[2] the shard, ARGV[3] the epoch, ARGV[4] the batch's first position
 * ("sequenceNumber:subSequenceNumber"), ARGV[5] its last sequence number, ARGV[6] that one's sort key.
 * Returns "committed" or "fenced".
 */
export const commitBatch = {
  name: 'firehoseCommitBatch',
  numberOfKeys: 4,
  lua: `
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local lease = raw and cjson.decode(raw)
if not lease or lease.owner ~= ARGV[1] or lease.epoch ~= tonumber(ARGV[3]) or lease.state ~= 'open' then return 'fenced' end
local intent = redis.call('HGET', KEYS[2], ARGV[2])
if intent and cjson.decode(intent).first == ARGV[4] then redis.call('HDEL', KEYS[2], ARGV[2]) end
local current = redis.call('HGET', KEYS[3], ARGV[2])
local forward = current == false
if current ~= false and current ~= 'SHARD_END' then
  local currentKey = redis.call('HGET', KEYS[4], ARGV[2])
  forward = currentKey == false or ARGV[6] > currentKey
end
if forward then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[6])
end
return 'committed'
`,
} as const;
