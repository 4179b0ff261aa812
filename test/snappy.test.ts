import { randomBytes } from 'node:crypto';
import { snappyUncompress } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { snappyCompress } from '../src/conversion/snappy.js';
import { sampleLogRecord } from '../src/dev/sample-records.js';

/** Decompressed by hyparquet, the reader's side (DuckDB reads the files in parquet-encoder.test). */
function roundTrip(input: Uint8Array): Uint8Array {
  const compressed = snappyCompress(input);
  const back = new Uint8Array(input.length);
  snappyUncompress(compressed, back);
  return back;
}

const logs = (bytes: number) => {
  const lines: string[] = [];
  for (let n = 0; n < bytes; n += lines.at(-1)!.length) lines.push(sampleLogRecord(Date.UTC(2026, 0, 1) + lines.length));
  return Buffer.from(lines.join('\n')).subarray(0, bytes);
};

describe('snappy compression for Parquet pages', () => {
  it.each([
    ['empty', new Uint8Array(0)],
    ['one byte', Buffer.from('x')],
    ['shorter than the match margin', Buffer.from('abcabcabcabc')],
    ['one byte repeated past a 64 KiB fragment', Buffer.alloc(200_000, 7)],
    ['random bytes (all literals), 1 MiB', randomBytes(1 << 20)],
    ['JSON logs, 1 MiB + 1', logs((1 << 20) + 1)],
    ['a long literal, then the same bytes again', Buffer.concat([randomBytes(70_000), Buffer.alloc(3, 1)]).subarray(0, 70_003)],
  ])('%s: decompresses to the same bytes', (_name, input) => {
    expect(Buffer.from(roundTrip(input)).equals(Buffer.from(input))).toBe(true);
  });

  it('compresses what repeats (JSON logs to under half) and returns its own bytes, not a view of a buffer reused by the next call', () => {
    const input = logs(1 << 20);
    const first = snappyCompress(input);
    expect(first.length).toBeLessThan(input.length / 2);
    const copy = Buffer.from(first);
    snappyCompress(randomBytes(1 << 20));
    expect(Buffer.from(first).equals(copy)).toBe(true);
  });
});
