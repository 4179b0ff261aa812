/**
 * One byte budget per process, counting what memory holds of records: a GetRecords response
 * reserved before it is requested, records waiting for their transform, raw chunks waiting for the
 * compressor, compressed bytes and kept records waiting for delivery, error-output lines. Whoever
 * holds bytes took them and gives them back when it lets go; sources take what they read, the
 * pipeline gives it back as records move on and batches are delivered. When the budget is spent,
 * readers wait for room instead of the heap growing, and the open buffers holding a good share of
 * it are sealed (the delivery streams listen for pressure), so nothing waits out an interval while
 * reading is paused.
 *
 * Readers also wait while the compressor is behind: raw chunks handed to it beyond what keeps every
 * core busy only queue up (catching up, 69 chunks of 4 MiB were seen waiting), so reading stops
 * there instead of filling the whole budget with raw bytes. That wait seals nothing: sealing
 * cannot make the compressor go faster.
 */
/** What holds budget bytes in open buffers (a delivery stream), and can send them on when readers wait. */
export interface PressureListener {
  /** Bytes held in buffers that only a seal (or their interval) sends on their way. */
  openBytes(): number;
  /** Seals them now (flush reason `backpressure`). */
  seal(): void;
}

export class ByteBudget {
  private used = 0;
  private compressingBytes = 0;
  private reservedBytes = 0;
  private waiters: Array<{ bytes: number; wake: () => void }> = [];
  private readonly pressureListeners: PressureListener[] = [];
  private wakeScheduled = false;
  private pausedSince: number | undefined;
  private pausedTotalMs = 0;
  private peak = 0;

  constructor(
    readonly limit: number,
    /** Raw bytes handed to the compressor and not yet compressed, past which readers wait. */
    readonly compressingLimit: number = Math.max(16 * 1024 * 1024, Math.floor(limit / 4)),
  ) {
    if (!(limit > 0)) throw new Error(`byte budget must be positive, got ${limit}`);
  }

  /** Raw bytes handed to the compressor, not yet compressed (held, and counted in `held` too). */
  get compressingNow(): number {
    return this.compressingBytes;
  }

  /** `bytes` already held were handed to the compressor. */
  compressing(bytes: number): void {
    this.compressingBytes += bytes;
  }

  /** `bytes` handed to the compressor are compressed (what memory holds of them is resized apart). */
  compressed(bytes: number): void {
    this.compressingBytes -= bytes;
    if (this.compressingBytes < 0) throw new Error(`compressing bytes went negative (${this.compressingBytes})`);
    this.scheduleWake();
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

  /** Asked to seal when a reader has to wait for room, should its open buffers be among what holds it. */
  onPressure(listener: PressureListener): () => void {
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
      this.takeReserved(bytes);
      return Promise.resolve(true);
    }
    this.startPause(!this.fitsLimit(bytes));
    return new Promise((resolve) => {
      const waiter = {
        bytes,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          this.takeReserved(bytes);
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

  /** A reservation's bytes given back (the read is over: its records hold their own bytes). */
  unreserve(bytes: number): void {
    this.reservedBytes -= bytes;
    this.give(bytes);
  }

  /** Resolves once there is room again (at once when there is), or when the signal aborts. */
  async whenAvailable(signal?: AbortSignal): Promise<void> {
    if (await this.reserve(1, signal)) this.unreserve(1);
  }

  private takeReserved(bytes: number): void {
    this.reservedBytes += bytes;
    this.take(bytes);
  }

  private fits(bytes: number): boolean {
    return this.fitsLimit(bytes) && !this.compressorBehind();
  }

  /**
   * The compressor is busy and what it has, with what reads in flight will bring, reaches its
   * limit. Reads in flight count: waking every waiting reader at once when one chunk is done would
   * let them all read.
   */
  private compressorBehind(): boolean {
    return this.compressingBytes > 0 && this.compressingBytes + this.reservedBytes >= this.compressingLimit;
  }

  private fitsLimit(bytes: number): boolean {
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
    // A reader that waited for the compressor may now wait for room: that wait seals.
    else if (!this.fitsLimit(this.waiters[0]!.bytes)) this.signalPressure();
  }

  /**
   * Sealing is worth it when open buffers, across every stream, hold a good share of the budget
   * (a quarter): what else is held — reads in flight, chunks being compressed, batches being
   * delivered — comes back by itself. The largest are sealed first, until what stays open is under
   * that share: five streams each holding a fifth are not left waiting for their intervals because
   * none alone holds a quarter, and a stream with a few records is not cut small for nothing.
   */
  private signalPressure(): void {
    let open = 0;
    const holders: Array<{ listener: PressureListener; bytes: number }> = [];
    for (const listener of this.pressureListeners) {
      const bytes = listener.openBytes();
      if (bytes <= 0) continue;
      holders.push({ listener, bytes });
      open += bytes;
    }
    if (open * 4 < this.limit) return;
    holders.sort((a, b) => b.bytes - a.bytes);
    for (const { listener, bytes } of holders) {
      listener.seal();
      open -= bytes;
      if (open * 4 < this.limit) break;
    }
  }

  /**
   * Every reader that has to wait for room asks for the buffers to be sealed: what they took since
   * the last wait is sealed too. Waiting for the compressor alone seals nothing.
   */
  private startPause(full: boolean): void {
    if (this.pausedSince === undefined) this.pausedSince = Date.now();
    if (full) this.signalPressure();
  }

  private endPause(): void {
    if (this.pausedSince !== undefined) this.pausedTotalMs += Date.now() - this.pausedSince;
    this.pausedSince = undefined;
  }
}
