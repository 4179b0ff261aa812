import { describe, expect, it } from 'vitest';
import { rotatedIndex } from '../destinations/opensearch/index.js';

const at = (iso: string) => Date.parse(iso);

describe('OpenSearch index rotation (Firehose suffixes, UTC)', () => {
  it.each([
    ['NoRotation', '2026-11-23T05:40:00Z', 'logs'],
    ['OneHour', '2026-11-23T05:40:00Z', 'logs-2026-11-23-05'],
    ['OneDay', '2026-11-23T23:59:59Z', 'logs-2026-11-23'],
    ['OneMonth', '2026-02-01T00:00:00Z', 'logs-2026-02'],
    ['OneWeek', '2026-01-01T12:00:00Z', 'logs-2026-w01'], // a Thursday: week 1
    ['OneWeek', '2024-12-30T00:00:00Z', 'logs-2025-w01'], // Monday of ISO week 1 of 2025
    ['OneWeek', '2021-01-03T00:00:00Z', 'logs-2020-w53'], // Sunday still in 2020's week 53
    ['OneWeek', '2026-11-23T10:00:00Z', 'logs-2026-w48'],
  ] as const)('%s at %s → %s', (period, time, expected) => {
    expect(rotatedIndex('logs', period, at(time))).toBe(expected);
  });
});
