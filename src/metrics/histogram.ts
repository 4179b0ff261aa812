/**
 * A duration histogram kept as plain numbers where the work happens (a transform stage, a
 * delivery), and read by the metrics registry at scrape time: the pipeline never imports the
 * metrics library.
 */
export class DurationHistogram {
  /** Upper bounds in seconds: a transform answers in milliseconds; a slow one hits its timeout (up to 900 s). */
  static readonly BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

  /** Observations per bucket, not cumulative; the last counts those above every bound. */
  readonly counts: number[] = new Array<number>(DurationHistogram.BUCKETS.length + 1).fill(0);
  sumSeconds = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < DurationHistogram.BUCKETS.length && seconds > DurationHistogram.BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sumSeconds += seconds;
    this.count++;
  }
}
