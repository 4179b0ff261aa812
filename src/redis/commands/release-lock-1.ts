/** KEYS[1] the lock; ARGV[1] its holder's token. Deletes it only for its holder: 1 if released. */
export const releaseLock = {
  name: 'firehoseReleaseLock',
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`,
} as const;
