/**
 * One byte budget per process, counting what memory holds of records: a GetRecords response
 * reserved before it is requested, records waiting for their transform, raw chunks waiting for the
 * compressor, compressed bytes and kept records waiting for delivery, error-output lines. Whoever
 * holds bytes took them and gives them back when it lets go; sources take what they read, the
 * pipeline gives it back as records move on and batches are delivered. When the budget is spent,
 * readers wait for room instead of the heap growing, and whoever listens for pressure (the delivery
 * streams) seals its open buffers, so nothing waits out an interval while reading is paused.
 */
export class ByteBudget {
  private used = 0;
  private waiters: Array<{ bytes: number; wake: () => void }> = [];
  private readonly pressureListeners: Array<() => void> = [];
  private wakeScheduled = false;
  private pausedSince: number | undefined;
  private pausedTotalMs = 0;
  private peak = 0;

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new Error(`byte budget must be positive, got ${limit}`);
  }

  /** Bytes held now. */
  get held(): number {
    return this.used;
  }

  /** The most ever held at once. */
  get peakHeld(): number {
    return this.peak;
  }

  /** How long readers have waited for room, in all (ms). */
  get pausedMs(): number {
    return this.pausedTotalMs + (this.pausedSince === undefined ? 0 : Date.now() - this.pausedSince);
  }

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`byte budget went negative (${this.used})`);
    this.scheduleWake();
  }

  /** What was held as `from` bytes is now held as `to` (a chunk compressed): one step, no passing peak. */
  resize(from: number, to: number): void {
    this.used += to - from;
    if (this.used > this.peak) this.peak = this.used;
    if (this.used < 0) throw new Error(`byte budget went negative (${this.used})`);
    if (to < from) this.scheduleWake();
  }

  /** Called when a reader has to wait for room: seal what holds bytes, so that they can be delivered. */
  onPressure(listener: () => void): () => void {
    this.pressureListeners.push(listener);
    return () => {
      const i = this.pressureListeners.indexOf(listener);
      if (i >= 0) this.pressureListeners.splice(i, 1);
    };
  }

  /**
   * Takes `bytes` once they fit within the limit (at once when they do; when nothing at all is held,
   * whatever the size, so a reservation larger than the budget still makes progress). Resolves false
   * without taking anything when the signal aborts.
   */
  reserve(bytes: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.fits(bytes)) {
      this.take(bytes);
      return Promise.resolve(true);
    }
    this.startPause();
    return new Promise((resolve) => {
      const waiter = {
        bytes,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          this.take(bytes);
          resolve(true);
        },
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        if (this.waiters.length === 0) this.endPause();
        resolve(false);
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves once there is room again (at once when there is), or when the signal aborts. */
  async whenAvailable(signal?: AbortSignal): Promise<void> {
    if (await this.reserve(1, signal)) this.give(1);
  }

  private fits(bytes: number): boolean {
    return this.used + bytes <= this.limit || this.used === 0;
  }

  /**
   * Waiters wake after the current turn, not inside give(): a source that gives back its
   * reservation and hands the records on (which takes their bytes) does both before anyone else
   * can take the room in between.
   */
  private scheduleWake(): void {
    if (this.wakeScheduled || this.waiters.length === 0) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      this.wakeWaiters();
    });
  }

  private wakeWaiters(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) this.waiters.shift()!.wake();
    if (this.waiters.length === 0) this.endPause();
  }

  /** Every reader that has to wait asks for the buffers to be sealed: what they took since the last wait is sealed too. */
  private startPause(): void {
    if (this.pausedSince === undefined) this.pausedSince = Date.now();
    for (const listener of this.pressureListeners) listener();
  }

  private endPause(): void {
    if (this.pausedSince !== undefined) this.pausedTotalMs += Date.now() - this.pausedSince;
    this.pausedSince = undefined;
  }
}
