import { describe, expect, it } from 'vitest';
import { formatReport, runChaos } from '../chaos/chaos.js';

// The short chaos run; `npm run chaos` is the long one (200,000 records, 30 s S3 outage).
describe('chaos: a fleet under kills, pauses, a split, Redis and S3 outages', () => {
  it.each([
    ['exactly-once', true],
    ['default', false],
  ])('%s: loses no record (every record put is read back from S3), and exactly-once duplicates none', async (_mode, exactlyOnce) => {
    const report = await runChaos({
      exactlyOnce,
      records: 30_000,
      shards: 4,
      workers: 3,
      recordsPerSecond: 1_500,
      leaseDurationInSeconds: 2,
      kills: 4,
      s3OutageMs: 5_000,
      failpoints: 'before-upload:0.05,after-intent:0.05,after-upload:0.05',
      log: (line) => console.log(line),
    });
    console.log(formatReport(report));
    expect(report.recordsPut).toBe(30_000);
    expect(report.lost).toBe(0);
    expect(report.delivered).toBe(30_000);
    expect(report.kills).toBeGreaterThanOrEqual(4);
    expect(report.takeoverMs.samples).toBeGreaterThan(0);
    if (exactlyOnce) expect(report.duplicated).toBe(0);
  }, 300_000);
});
