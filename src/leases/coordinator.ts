import { performance } from 'node:perf_hooks';
import { setMaxListeners } from 'node:events';
import { sleep } from '../clock.js';
import type { Logger } from '../log.js';
import { planLeases } from './plan.js';
import type { LeaseTable, LeaseView } from './table.js';

/** A lease this worker holds, as this worker knows it. */
export class HeldLease {
  /** Aborted when the lease is lost or handed over: the shard's reader listens on it. */
  readonly abort = new AbortController();
  lost = false;
  handingOff = false;

  constructor(
    readonly shardId: string,
    readonly epoch: number,
    private readonly durationMs: number,
    /** Monotonic time (performance.now) the last renewal that succeeded was sent. */
    public renewedAt: number,
  ) {
    setMaxListeners(0, this.abort.signal);
  }

  /**
   * Whether this worker may still act under the lease: not known lost, and renewed within one lease
   * duration by its own monotonic clock. A worker that was paused (SIGSTOP, a long GC) cannot know
   * whether another took the lease meanwhile, so it must not act until a renewal says so.
   */
  get valid(): boolean {
    return !this.lost && performance.now() - this.renewedAt < this.durationMs;
  }

  /** Resolves true once the lease is valid again (a renewal got through), false once it is lost or the signal aborts. */
  async whenValid(signal: AbortSignal): Promise<boolean> {
    while (!this.valid) {
      if (this.lost || signal.aborted) return false;
      await sleep(50, signal);
    }
    return true;
  }
}

/** What the coordinator tells the source reading the shards. */
export interface LeaseHolder {
  /** A lease was taken: start reading the shard from its checkpoint (undefined: never checkpointed). */
  acquired(lease: HeldLease, checkpoint: string | undefined, view: LeaseView): void;
  /** A lease is gone (taken by another, expired, a write refused): its reader is already aborted. */
  lost(lease: HeldLease, why: string): void;
  /** Another worker asks for the lease: finish what is held of the shard, checkpoint, then completeHandOff(). */
  handOffRequested(lease: HeldLease, to: string): void;
}

export interface LeaseStats {
  taken: number;
  forcedTakes: number;
  handedOff: number;
  lost: number;
  released: number;
  handOffsAsked: number;
}

/**
 * One worker's side of the lease protocol for one source: every third of a lease duration it
 * renews all its leases in one call, then (until stopped) takes free leases, asks loaded workers
 * for leases by cooperative hand-off, and forces a take only when a hand-off is overdue.
 */
export class LeaseCoordinator {
  private readonly held = new Map<string, HeldLease>();
  private taking = true;
  private readonly closing = new AbortController();
  private loop: Promise<void> | undefined;
  readonly stats: LeaseStats = { taken: 0, forcedTakes: 0, handedOff: 0, lost: 0, released: 0, handOffsAsked: 0 };
  /** The latest view of the table, for status pages. */
  lastView: LeaseView | undefined;

  constructor(
    private readonly table: LeaseTable,
    readonly workerId: string,
    readonly durationMs: number,
    private readonly holder: LeaseHolder,
    private readonly log: Logger,
  ) {}

  get leases(): readonly HeldLease[] {
    return [...this.held.values()];
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const signal = this.closing.signal;
    while (!signal.aborted) {
      try {
        await this.cycle();
      } catch (err) {
        this.log.warn('lease coordination failed; will retry', { error: err });
      }
      this.noteStale();
      // A little jitter keeps workers started together from planning in lockstep.
      await sleep((this.durationMs / 3) * (0.9 + Math.random() * 0.2), signal);
    }
  }

  /** One round: renew, then (unless stopping) take, force and ask. */
  async cycle(): Promise<void> {
    await this.renew();
    if (!this.taking || this.closing.signal.aborted) return;
    const view = await this.table.view();
    this.lastView = view;
    const plan = planLeases(view, this.workerId, this.durationMs, new Set(this.held.keys()));
    for (const shardId of plan.take) await this.take(shardId, false, view);
    for (const shardId of plan.force) await this.take(shardId, true, view);
    for (const { shardId, owner } of plan.request) {
      if (await this.table.requestHandOff(this.workerId, shardId, owner)) {
        this.stats.handOffsAsked++;
        this.log.info('asked for a lease to balance the fleet', { shardId, owner });
      }
    }
  }

  private async renew(): Promise<void> {
    const leases = [...this.held.values()];
    const sentAt = performance.now();
    const renewal = await this.table.renew(this.workerId, this.durationMs, leases);
    for (const lease of leases) {
      if (lease.lost) continue;
      const status = renewal.statuses.get(lease.shardId);
      if (!status?.held) {
        this.markLost(lease, 'another worker took it');
        continue;
      }
      lease.renewedAt = sentAt;
      if (status.handOffTo && !lease.handingOff && this.taking) {
        lease.handingOff = true;
        this.holder.handOffRequested(lease, status.handOffTo);
      }
    }
  }

  private async take(shardId: string, force: boolean, view: LeaseView): Promise<void> {
    const sentAt = performance.now();
    const result = await this.table.take(this.workerId, shardId, this.durationMs, force);
    if (!result.taken) return;
    const previous = this.held.get(shardId);
    if (previous) this.markLost(previous, 'taken again under a new epoch');
    const lease = new HeldLease(shardId, result.epoch, this.durationMs, sentAt);
    this.held.set(shardId, lease);
    this.stats.taken++;
    if (force) this.stats.forcedTakes++;
    this.log.info(force ? 'took a lease whose hand-off was overdue' : 'took a lease', { shardId, epoch: result.epoch });
    this.holder.acquired(lease, result.checkpoint, view);
  }

  /**
   * Leases not renewed within their duration by this worker's own clock: their readers pause at once
   * (this worker cannot know whether another took them). They are kept, not dropped: a renewal that
   * finds owner and epoch unchanged proves nobody else read the shard meanwhile, and reading resumes
   * where it paused; one that finds them changed ends the lease here.
   */
  private noteStale(): void {
    let stale = 0;
    for (const lease of this.held.values()) if (!lease.valid) stale++;
    if (stale > 0 && !this.staleReported) this.log.warn('leases not renewed within their duration: reading paused until a renewal gets through', { leases: stale });
    this.staleReported = stale > 0;
  }

  private staleReported = false;

  markLost(lease: HeldLease, why: string): void {
    if (lease.lost) return;
    lease.lost = true;
    if (this.held.get(lease.shardId) === lease) this.held.delete(lease.shardId);
    lease.abort.abort();
    this.stats.lost++;
    this.log.warn('lost a lease; stopped reading the shard', { shardId: lease.shardId, epoch: lease.epoch, why });
    this.holder.lost(lease, why);
  }

  /** The shard was read and checkpointed to its end: its lease ended in the same write. */
  finish(shardId: string): void {
    const lease = this.held.get(shardId);
    if (!lease) return;
    lease.lost = true;
    lease.abort.abort();
    this.held.delete(shardId);
  }

  /** The holder finished what it held of the shard and checkpointed: hand the lease to the asker. */
  async completeHandOff(lease: HeldLease): Promise<void> {
    if (lease.lost) return;
    lease.abort.abort();
    const outcome = await this.table.handOff(this.workerId, lease.shardId, lease.epoch, this.durationMs);
    lease.lost = true;
    if (this.held.get(lease.shardId) === lease) this.held.delete(lease.shardId);
    if (outcome >= 0) this.stats.handedOff++;
    this.log.info(outcome > 0 ? 'handed a lease over' : outcome === 0 ? 'released a lease (its asker is gone)' : 'lease was already taken', { shardId: lease.shardId });
  }

  /** At a stop: take no more leases (keep renewing those held until close, while the pipeline drains). */
  stopTaking(): void {
    this.taking = false;
  }

  /** After the final checkpoint: release every lease so the others take them at once, and leave. */
  async close(): Promise<void> {
    this.taking = false;
    this.closing.abort();
    await this.loop;
    for (const lease of this.held.values()) {
      lease.abort.abort();
      try {
        if (lease.valid && (await this.table.release(this.workerId, lease.shardId, lease.epoch))) this.stats.released++;
      } catch (err) {
        this.log.warn('could not release a lease; it expires instead', { shardId: lease.shardId, error: err });
      }
    }
    this.held.clear();
    await this.table.leave(this.workerId).catch(() => undefined);
  }
}
