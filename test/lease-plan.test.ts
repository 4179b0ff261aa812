import { describe, expect, it } from 'vitest';
import { planLeases } from '../src/leases/plan.js';
import type { Lease, LeaseView } from '../src/leases/table.js';

const NOW = 1_000_000;
const D = 10_000;

function lease(shardId: string, owner?: string, extra: Partial<Lease> = {}): Lease {
  return { shardId, owner, epoch: owner ? 1 : 0, expiresAt: owner ? NOW + D : 0, parents: [], state: 'open', handOffTo: undefined, handOffAt: undefined, startedFrom: undefined, ...extra };
}

function view(leases: Lease[], workers: string[]): LeaseView {
  return { now: NOW, leases, workers };
}

const shards = (n: number, owner?: (i: number) => string | undefined) => Array.from({ length: n }, (_, i) => lease(`s${String(i).padStart(2, '0')}`, owner?.(i)));

describe('lease balancing', () => {
  it('a lone worker takes every free lease', () => {
    expect(planLeases(view(shards(8), []), 'a', D).take).toHaveLength(8);
  });

  it('workers joining one that holds 8 each ask for their share of 3 in one cycle, and together leave it 2', () => {
    const leases = shards(8, () => 'a');
    const b = planLeases(view(leases, ['a', 'b', 'c']), 'b', D);
    expect(b.take).toEqual([]);
    expect(b.request).toHaveLength(3);
    expect(new Set(b.request.map((r) => r.owner))).toEqual(new Set(['a']));
    // c plans after b's asks are recorded: they count as b's.
    const asked = leases.map((l) => (b.request.some((r) => r.shardId === l.shardId) ? { ...l, handOffTo: 'b', handOffAt: NOW } : l));
    expect(planLeases(view(asked, ['a', 'b', 'c']), 'c', D).request).toHaveLength(2);
  });

  it('3/3/2 and 4/4/4/4 are stable: nobody asks, nobody takes', () => {
    const mine = (leases: Lease[], me: string) => new Set(leases.filter((l) => l.owner === me).map((l) => l.shardId));
    const leases = shards(8, (i) => ['a', 'b', 'c'][i % 3]);
    for (const me of ['a', 'b', 'c']) expect(planLeases(view(leases, ['a', 'b', 'c']), me, D, mine(leases, me))).toEqual({ take: [], request: [], force: [] });
    const sixteen = shards(16, (i) => ['a', 'b', 'c', 'd'][i % 4]);
    for (const me of ['a', 'b', 'c', 'd']) expect(planLeases(view(sixteen, ['a', 'b', 'c', 'd']), me, D, mine(sixteen, me))).toEqual({ take: [], request: [], force: [] });
  });

  it('9 shards on 3/3/3/0: the newcomer asks until no one holds two more than it', () => {
    const leases = shards(9, (i) => ['a', 'b', 'c'][i % 3]);
    expect(planLeases(view(leases, ['a', 'b', 'c', 'd']), 'd', D).request).toHaveLength(2);
  });

  it('expired leases and those of workers gone are free', () => {
    const leases = [lease('s0', 'gone', { expiresAt: NOW - 1 }), lease('s1', 'a'), lease('s2', 'a')];
    expect(planLeases(view(leases, ['a', 'b']), 'b', D).take).toEqual(['s0']);
  });

  it('a child counts only once its leased parents ended; a parent aged out of the stream holds nothing back', () => {
    const leases = [lease('p', 'a'), lease('c1', undefined, { parents: ['p'] }), lease('c2', undefined, { parents: ['gone'] })];
    expect(planLeases(view(leases, ['a', 'b']), 'b', D).take).toEqual(['c2']);
    const ended = [{ ...leases[0]!, owner: undefined, state: 'ended' as const }, leases[1]!, leases[2]!];
    expect(planLeases(view(ended, ['b']), 'b', D).take).toEqual(['c1', 'c2']);
  });

  it('a hand-off not done within a lease duration is forced; a lease Redis says is ours but we do not read is taken back', () => {
    const asked = [lease('s0', 'a', { handOffTo: 'b', handOffAt: NOW - D - 1 }), lease('s1', 'a', { handOffTo: 'b', handOffAt: NOW - 1 }), lease('s2', 'a'), lease('s3', 'b')];
    const plan = planLeases(view(asked, ['a', 'b']), 'b', D, new Set());
    expect(plan.force).toEqual(['s0']);
    expect(plan.take).toEqual(['s3']);
    expect(planLeases(view(asked, ['a', 'b']), 'b', D, new Set(['s3'])).take).toEqual([]);
  });
});
