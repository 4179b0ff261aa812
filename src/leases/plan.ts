import type { Lease, LeaseView } from './table.js';

/** What a worker does in one coordination cycle. */
export interface LeasePlan {
  /** Unowned or expired leases to take. */
  readonly take: readonly string[];
  /** Leases to ask their owner for, with the owner seen (cooperative hand-off). */
  readonly request: readonly { shardId: string; owner: string }[];
  /** Leases this worker asked for that their owner did not hand over in time. */
  readonly force: readonly string[];
}

/**
 * Balancing, as one worker sees it. Only leases that can be read now count: open ones whose leased
 * parents ended. The share is ⌈readable / live workers⌉. A worker takes free leases up to its share,
 * then asks workers holding at least two more than it for the difference, all in one cycle (KCL
 * steals one lease per cycle: #708). A lease already asked for counts as its asker's, so workers
 * planning at once do not ask twice for the same surplus.
 */
export function planLeases(view: LeaseView, me: string, durationMs: number, held: ReadonlySet<string> = new Set()): LeasePlan {
  const { now } = view;
  const workers = new Set(view.workers);
  workers.add(me);
  const byShard = new Map(view.leases.map((l) => [l.shardId, l]));
  const readable = view.leases.filter((l) => l.state === 'open' && l.parents.every((p) => byShard.get(p)?.state !== 'open'));
  const share = Math.ceil(readable.length / workers.size);

  const counts = new Map<string, number>([...workers].map((w) => [w, 0]));
  const owned = new Map<string, Lease[]>();
  const free: Lease[] = [];
  const force: string[] = [];
  // Leases Redis says are this worker's that it does not read: handed over to it, or held by an
  // earlier run under the same worker id. Taken at once (a take raises the epoch).
  const adopt: string[] = [];
  for (const lease of readable) {
    if (lease.owner === me && !held.has(lease.shardId)) {
      adopt.push(lease.shardId);
      counts.set(me, (counts.get(me) ?? 0) + 1);
      continue;
    }
    const alive = lease.owner !== undefined && lease.expiresAt > now && workers.has(lease.owner);
    if (!alive) {
      free.push(lease);
      continue;
    }
    const pendingTo = lease.handOffTo !== undefined && workers.has(lease.handOffTo) ? lease.handOffTo : undefined;
    const holder = pendingTo ?? lease.owner!;
    counts.set(holder, (counts.get(holder) ?? 0) + 1);
    if (pendingTo === me && lease.owner !== me && now >= (lease.handOffAt ?? now) + durationMs) force.push(lease.shardId);
    if (pendingTo === undefined) owned.set(holder, [...(owned.get(holder) ?? []), lease]);
  }

  let mine = counts.get(me) ?? 0;
  const take: string[] = [...adopt];
  for (const lease of free) {
    if (mine >= share) break;
    take.push(lease.shardId);
    mine++;
  }
  // Free leases nobody's share covers (workers whose heartbeat outlived them): the least loaded takes one.
  const freeTaken = take.length - adopt.length;
  if (free.length > freeTaken && [...counts].every(([w, n]) => w === me || n >= mine)) {
    take.push(free[freeTaken]!.shardId);
    mine++;
  }

  const request: { shardId: string; owner: string }[] = [];
  while (mine < share) {
    let donor: string | undefined;
    let most = mine + 1;
    for (const [worker, n] of counts) {
      if (worker !== me && n > most && (owned.get(worker)?.length ?? 0) > 0) {
        donor = worker;
        most = n;
      }
    }
    if (!donor) break;
    // The donor's newest shard: its older ones have the longest-running buffers.
    const lease = owned.get(donor)!.pop()!;
    request.push({ shardId: lease.shardId, owner: donor });
    counts.set(donor, most - 1);
    mine++;
  }
  return { take, request, force };
}
