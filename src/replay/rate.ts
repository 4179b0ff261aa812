import { sleep } from '../clock.js';

/**
 * A token bucket: at most `perSecond` units a second on average, with a burst of a tenth of a
 * second's worth, so a replay keeps to --max-records-per-second / --max-mb-per-second smoothly.
 */
export class RateLimit {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond / 10;
  }

  /** Waits until `units` may go (units larger than the burst go once the bucket has filled to them). */
  async take(units: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(Math.max(this.perSecond / 10, units), this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= units) {
        this.tokens -= units;
        return;
      }
      await sleep(Math.max(1, ((units - this.tokens) / this.perSecond) * 1000), signal);
      if (signal.aborted) return;
    }
  }
}
