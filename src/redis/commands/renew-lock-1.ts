/** KEYS[1] the lock; ARGV[1] its holder's token, ARGV[2] the new lifetime in ms. 1 if still held and renewed. */
export const renewLock = {
  name: 'firehoseRenewLock',
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`,
} as const;
