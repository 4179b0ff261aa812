import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../src/dev/peers.js';
import { LeaseTable } from '../src/leases/table.js';

// The lease scripts against a real redis-server: each rule the fleet relies on, one call at a time.
describe('lease scripts', () => {
  let server: RedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });
  let n = 0;
  const table = () => new LeaseTable(redis, `t${++n}`, 'kinesis/us-east-1/s');
  const D = 10_000;

  it('a take raises the epoch; an owned, unexpired lease is refused to others and given back to its own worker id', async () => {
    const t = table();
    await t.create([{ id: 'a', parents: [] }]);
    expect(await t.take('w1', 'a', D)).toEqual({ taken: true, epoch: 1, checkpoint: undefined });
    expect(await t.take('w2', 'a', D)).toEqual({ taken: false, why: 'owned' });
    expect(await t.take('w1', 'a', D)).toMatchObject({ taken: true, epoch: 2 }); // a restart under the same id
  });

  it('checkpoints are fenced by epoch and never move backwards; renewal finds a lease taken by another lost', async () => {
    const t = table();
    await t.create([{ id: 'a', parents: [] }]);
    await t.take('w1', 'a', D);
    expect(await t.checkpoint('w1', [{ shardId: 'a', epoch: 1, position: '20', sortKey: '002:20' }])).toEqual([]);
    expect(await t.checkpoint('w1', [{ shardId: 'a', epoch: 1, position: '9', sortKey: '001:9' }])).toEqual([]);
    expect((await t.checkpoints()).a).toBe('20');
    // w2 takes it once it expires (duration 1 ms here), raising the epoch: w1's writes are refused from then on.
    await t.take('w1', 'a', 1);
    await new Promise((r) => setTimeout(r, 5));
    expect(await t.take('w2', 'a', D)).toMatchObject({ taken: true, epoch: 3, checkpoint: '20' });
    expect(await t.checkpoint('w1', [{ shardId: 'a', epoch: 2, position: '30', sortKey: '002:30' }])).toEqual(['a']);
    expect((await t.checkpoints()).a).toBe('20');
    const renewal = await t.renew('w1', D, [{ shardId: 'a', epoch: 2 }]);
    expect(renewal.statuses.get('a')).toEqual({ held: false });
  });

  it('SHARD_END ends the lease and creates its children in the same call; a child is not taken before its parents ended', async () => {
    const t = table();
    await t.create([{ id: 'p', parents: [] }, { id: 'c1', parents: ['p'] }]);
    await t.take('w1', 'p', D);
    expect(await t.take('w1', 'c1', D)).toEqual({ taken: false, why: 'parents' });
    await t.checkpoint('w1', [{ shardId: 'p', epoch: 1, position: 'SHARD_END', sortKey: '', ending: { from: 'TRIM_HORIZON', children: [{ id: 'c1', parents: ['p'] }, { id: 'c2', parents: ['p'] }] } }]);
    const view = await t.view();
    expect(view.leases.map((l) => [l.shardId, l.state, l.owner ?? null, [...l.parents]])).toEqual([
      ['c1', 'open', null, ['p']],
      ['c2', 'open', null, ['p']],
      ['p', 'ended', null, []],
    ]);
    expect(await t.take('w2', 'c1', D)).toMatchObject({ taken: true, epoch: 1 });
    expect(await t.take('w2', 'p', D)).toEqual({ taken: false, why: 'ended' });
  });

  it('a hand-off goes to the live worker that asked, with the epoch raised; a forced take waits one lease duration', async () => {
    const t = table();
    await t.create([{ id: 'a', parents: [] }, { id: 'b', parents: [] }]);
    await t.renew('w2', D, []); // w2's heartbeat: it is alive
    await t.take('w1', 'a', D);
    await t.take('w1', 'b', D);
    expect(await t.requestHandOff('w2', 'a', 'w1')).toBe(true);
    expect((await t.renew('w1', D, [{ shardId: 'a', epoch: 1 }])).statuses.get('a')).toEqual({ held: true, handOffTo: 'w2' });
    expect(await t.handOff('w1', 'a', 1, D)).toBe(2);
    expect((await t.view()).leases.find((l) => l.shardId === 'a')).toMatchObject({ owner: 'w2', epoch: 2 });
    // b: asked for, not handed over; a forced take before a lease duration has passed is refused.
    expect(await t.requestHandOff('w2', 'b', 'w1')).toBe(true);
    expect(await t.take('w2', 'b', D, true)).toEqual({ taken: false, why: 'owned' });
    // Past the (here 1 ms) duration since the ask, the take is forced.
    await new Promise((r) => setTimeout(r, 5));
    expect(await t.take('w2', 'b', 1, true)).toMatchObject({ taken: true, epoch: 2 });
  });

  it('exactly-once: an intent is fenced, fixed once recorded, and dropped by the commit that moves the checkpoint', async () => {
    const t = table();
    await t.create([{ id: 'a', parents: [] }]);
    await t.take('w1', 'a', D);
    const intent = { shardId: 'a', first: '11:0', last: '20:0', key: 'k', configHash: 'h', epoch: 1 };
    expect(await t.recordIntent('w1', 1, intent)).toBe('recorded');
    expect(await t.recordIntent('w1', 1, intent)).toBe('same');
    expect(await t.recordIntent('w1', 1, { ...intent, first: '15:0' })).toBe('conflict');
    expect(await t.recordIntent('w1', 7, intent)).toBe('fenced');
    expect(await t.commitBatch('w1', 7, 'a', '11:0', '20', '002:20')).toBe('fenced');
    expect(await t.openIntent('a')).toEqual(intent);
    expect(await t.commitBatch('w1', 1, 'a', '11:0', '20', '002:20')).toBe('committed');
    expect(await t.openIntent('a')).toBeUndefined();
    expect((await t.checkpoints()).a).toBe('20');
  });
});
