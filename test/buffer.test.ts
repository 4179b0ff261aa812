import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ShardProgress, type Segment } from '../src/ack.js';
import { BufferSet, RecordBuffer, type SealedBatch } from '../src/buffer.js';
import { ManualClock } from '../src/clock.js';
import type { BufferSettings } from '../src/pipeline-settings.js';
import { ChunkedEncoder } from '../src/encoder.js';
import { ByteBudget } from '../src/budget.js';
import type { SourceRecord } from '../src/records.js';

const MiB = 1024 * 1024;

function records(count: number, size: number, clock: ManualClock): SourceRecord[] {
  const shard = new ShardProgress('s', undefined, { segmentReleased() {}, progressed() {} });
  const segment: Segment = shard.open(String(count), count, count * size);
  return Array.from({ length: count }, (_, i) => ({
    data: Buffer.alloc(size, i % 251),
    partitionKey: 'k',
    shardId: 's',
    sequenceNumber: String(i + 1),
    subSequenceNumber: 0,
    approximateArrivalTimestamp: clock.now() - 1000 * (count - i),
    segment,
  }));
}

function buffer(settings: Partial<BufferSettings>, clock: ManualClock) {
  const sealed: SealedBatch[] = [];
  const b = new RecordBuffer(
    { sizeBytes: MiB, intervalMs: 60_000, encoding: 'GZIP', appendNewlineDelimiter: false, ...settings },
    clock,
    (batch) => sealed.push(batch),
  );
  return { b, sealed };
}

describe('buffer: the min-of rule', () => {
  it('seals on size exactly when the next record would pass the hint', () => {
    const clock = new ManualClock();
    const { b, sealed } = buffer({ sizeBytes: MiB }, clock);
    const input = records(2_000, 1_000, clock);
    for (let i = 0; i < 1_048; i++) b.append(input[i]!); // 1,048,000 bytes ≤ 1 MiB
    expect(sealed).toHaveLength(0);
    b.append(input[1_048]!); // 1,049,000 would pass 1,048,576
    expect(sealed).toHaveLength(1);
    expect(sealed[0]!).toMatchObject({ reason: 'size', records: 1_048, rawBytes: 1_048_000 });
    expect(b.bufferedRecords).toBe(1);
  });

  it('seals on size when a record fills the hint exactly', () => {
    const clock = new ManualClock();
    const { b, sealed } = buffer({ sizeBytes: MiB }, clock);
    for (const r of records(4, MiB / 4, clock)) b.append(r);
    expect(sealed.map((s) => s.records)).toEqual([4]);
    expect(b.bufferedRecords).toBe(0);
  });

  it('seals on the interval, counted from the first record buffered, when size is not reached', () => {
    const clock = new ManualClock();
    const { b, sealed } = buffer({ sizeBytes: 5 * MiB, intervalMs: 60_000 }, clock);
    const input = records(3, 100, clock);
    b.append(input[0]!);
    clock.advance(30_000);
    b.append(input[1]!);
    clock.advance(29_999);
    expect(sealed).toHaveLength(0);
    clock.advance(1);
    expect(sealed).toHaveLength(1);
    expect(sealed[0]!).toMatchObject({ reason: 'interval', records: 2 });
    // The next buffer's interval starts with its own first record.
    b.append(input[2]!);
    clock.advance(59_999);
    expect(sealed).toHaveLength(1);
    clock.advance(1);
    expect(sealed).toHaveLength(2);
  });

  it('whichever comes first: a size seal cancels the pending interval', () => {
    const clock = new ManualClock();
    const { b, sealed } = buffer({ sizeBytes: MiB, intervalMs: 60_000 }, clock);
    for (const r of records(2, MiB / 2, clock)) b.append(r);
    expect(sealed.map((s) => s.reason)).toEqual(['size']);
    clock.advance(120_000);
    expect(sealed).toHaveLength(1); // no empty interval flush
  });

  it('names the object by its oldest record and carries every record byte-for-byte', async () => {
    const clock = new ManualClock();
    const { b, sealed } = buffer({ appendNewlineDelimiter: true }, clock);
    const input = records(5, 10, clock);
    for (const r of input) b.append(r);
    b.flush();
    expect(sealed[0]!.oldestArrivalTimestamp).toBe(input[0]!.approximateArrivalTimestamp);
    expect(sealed[0]!.rawBytes).toBe(55);
    const body = gunzipSync(Buffer.concat(await sealed[0]!.body));
    expect(body).toEqual(Buffer.concat(input.flatMap((r) => [r.data, Buffer.from('\n')])));
  });
});

describe('chunked encoder', () => {
  it('compresses chunk by chunk into gzip members that gunzip as one stream', async () => {
    const encoder = new ChunkedEncoder('GZIP', 64 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const part = Buffer.from(`record ${i} ${'y'.repeat(i * 7)}\n`);
      parts.push(part);
      encoder.write(part);
    }
    encoder.write(Buffer.alloc(200_000, 7)); // larger than a chunk: spans several
    parts.push(Buffer.alloc(200_000, 7));
    const chunks = await encoder.finish();
    expect(chunks.length).toBeGreaterThan(3);
    expect(gunzipSync(Buffer.concat(chunks))).toEqual(Buffer.concat(parts));
  });

  it('passes bytes through unchanged when uncompressed', async () => {
    const encoder = new ChunkedEncoder('UNCOMPRESSED', 8);
    encoder.write(Buffer.from('hello, '));
    encoder.write(Buffer.from('world'));
    expect(Buffer.concat(await encoder.finish()).toString()).toBe('hello, world');
  });
});

describe('partitioned buffers', () => {
  it('keeps at most maxActive partitions open: a new one seals the longest-open partition, dropping nothing', () => {
    const clock = new ManualClock();
    const sealed: SealedBatch[] = [];
    let exceeded = 0;
    const set = new BufferSet(
      { sizeBytes: MiB, intervalMs: 60_000, encoding: 'UNCOMPRESSED', appendNewlineDelimiter: false },
      clock,
      3,
      (b) => sealed.push(b),
      () => exceeded++,
    );
    const input = records(5, 10, clock);
    for (const [i, key] of ['a', 'b', 'c'].entries()) {
      set.append(key, { partitionKeys: { k: key } }, input[i]!);
      clock.advance(1_000);
    }
    expect(sealed).toHaveLength(0);
    set.append('a', { partitionKeys: { k: 'a' } }, input[3]!); // an open partition: no eviction
    set.append('d', { partitionKeys: { k: 'd' } }, input[4]!); // a fourth: "a" has been open longest
    expect(exceeded).toBe(1);
    expect(sealed.map((b) => [b.reason, b.tags.partitionKeys, b.records])).toEqual([['partition-limit', { k: 'a' }, 2]]);
    expect(set.active).toBe(3);
    set.flushAll('shutdown');
    expect(sealed.reduce((n, b) => n + b.records, 0)).toBe(5);
  });
});

describe('chunks reused', () => {
  it('a compressed chunk is reused by the next buffer, and neither object changes: each gunzips to its own bytes', async () => {
    const bytesOf = (seed: number) => Array.from({ length: 40 }, (_, i) => Buffer.alloc(256 * 1024, (seed * 40 + i) % 251));
    const first = new ChunkedEncoder('GZIP');
    const firstParts = bytesOf(1);
    for (const part of firstParts) first.write(part); // 10 MiB: two full 4 MiB chunks and a partial one
    const firstOut = await first.finish();
    // The first encoder's chunks are compressed: the second one fills them again.
    const second = new ChunkedEncoder('GZIP');
    const secondParts = bytesOf(2);
    for (const part of secondParts) {
      second.write(part);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const secondOut = await second.finish();
    expect(gunzipSync(Buffer.concat(secondOut)).equals(Buffer.concat(secondParts))).toBe(true);
    expect(gunzipSync(Buffer.concat(firstOut)).equals(Buffer.concat(firstParts))).toBe(true);
  });

  it('uncompressed chunks are the object\'s bytes, never reused', async () => {
    const encoder = new ChunkedEncoder('UNCOMPRESSED');
    const parts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(256 * 1024, i));
    for (const part of parts) encoder.write(part);
    const out = await encoder.finish();
    const again = new ChunkedEncoder('UNCOMPRESSED');
    for (const part of parts) again.write(Buffer.alloc(part.length, 255));
    await again.finish();
    expect(Buffer.concat(out).equals(Buffer.concat(parts))).toBe(true);
  });
});

describe('the byte budget', () => {
  it("counts a buffer's manifest columns as they grow, and gives them back with the batch", () => {
    const clock = new ManualClock();
    const budget = new ByteBudget(256 * MiB);
    const sealed: SealedBatch[] = [];
    const b = new RecordBuffer({ sizeBytes: 64 * MiB, intervalMs: 60_000, encoding: 'UNCOMPRESSED', appendNewlineDelimiter: false, manifest: true }, clock, (batch) => sealed.push(batch), {}, undefined, budget);
    const input = records(100_000, 10, clock).map((r, i) => ({ ...r, partitionKey: `customer-${i}`, sequenceNumber: `4959033827149025660855969253836157109592157598913${String(i).padStart(7, '0')}` }));
    for (const record of input) {
      budget.take(record.data.length); // as the pipeline does when it accepts a read
      b.append(record);
    }
    // 100,000 records of 10 bytes: 1 MB of records, and their manifest's columns (a partition key, a sequence number's tail, four numbers each) beside them.
    const manifestBytes = budget.held - 1_000_000;
    expect(manifestBytes).toBeGreaterThan(100_000 * (4 + 4 + 8 + 4 + 4 + 14));
    expect(b.heldBytes).toBe(budget.held);
    b.flush('shutdown');
    expect(sealed).toHaveLength(1);
    expect(sealed[0]!.holding.bytes).toBe(budget.held);
    sealed[0]!.holding.release();
    expect(budget.held).toBe(0);
  });
});

describe('many partitions at once', () => {
  it('each hands its chunk to the compressor at its share of the budget: memory holds compressed bytes, not every partition\'s raw ones, long before any seal', async () => {
    const clock = new ManualClock();
    const budget = new ByteBudget(64 * MiB);
    const sealed: SealedBatch[] = [];
    const set = new BufferSet({ sizeBytes: 128 * MiB, intervalMs: 60_000, encoding: 'GZIP', appendNewlineDelimiter: true }, clock, 500, (b) => sealed.push(b), undefined, undefined, budget);
    const partitions = 200;
    const perPartition = records(40, 8 * 1024, clock); // 320 KiB each, 62.5 MiB in all
    let raw = 0;
    for (const record of perPartition)
      for (let p = 0; p < partitions; p++) {
        budget.take(record.data.length); // as the pipeline does when it accepts a read
        raw += record.data.length + 1;
        set.append(`p${p}`, { partitionKeys: { p: String(p) } }, record);
      }
    await waitUntil(() => budget.compressingNow === 0);
    expect(sealed).toHaveLength(0);
    expect(set.active).toBe(partitions);
    // 128 KiB chunks compressed as they filled: what is held is their compressed bytes and the open remainders.
    expect(budget.held).toBeLessThan(raw / 2);
    expect(set.heldBytes).toBe(budget.held);
    set.flushAll('shutdown');
    const bodies = await Promise.all(sealed.map((b) => b.body));
    expect(gunzipSync(Buffer.concat(bodies[7]!)).equals(Buffer.concat(perPartition.flatMap((r) => [r.data, Buffer.from('\n')])))).toBe(true);
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}
