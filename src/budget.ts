/**
 * One byte budget per process. A source takes budget for what it reads before handing it on; the
 * budget comes back when those records reach an end. When it is spent, sources stop reading
 * (backpressure) instead of the heap growing.
 */
export class ByteBudget {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new Error(`byte budget must be positive, got ${limit}`);
  }

  get exhausted(): boolean {
    return this.used >= this.limit;
  }

  take(bytes: number): void {
    this.used += bytes;
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.used < 0) throw new Error(`byte budget went negative (${this.used})`);
    if (!this.exhausted && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves once there is room again (at once when there is), or when the signal aborts. */
  whenAvailable(signal?: AbortSignal): Promise<void> {
    if (!this.exhausted || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
