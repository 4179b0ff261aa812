import { describe, expect, it } from 'vitest';
import { Acknowledgements, ShardProgress, type ProgressListener, type Segment } from '../src/ack.js';

function listener() {
  const released: Segment[] = [];
  let progressed = 0;
  const l: ProgressListener = {
    segmentReleased: (s) => released.push(s),
    progressed: () => progressed++,
  };
  return { l, released, progressedCount: () => progressed };
}

describe('acknowledgement model', () => {
  it('checkpoints the highest position with everything before it released, whatever order batches finish in', () => {
    const { l } = listener();
    const shard = new ShardProgress('shardId-000', '100', l);
    const a = shard.open('110', 10, 100);
    const b = shard.open('120', 10, 100);
    const c = shard.open('130', 10, 100);
    expect(shard.checkpoint).toBe('100');

    shard.release(c, 10);
    expect(shard.checkpoint).toBe('100'); // c is done but a and b are not
    shard.release(a, 4);
    expect(shard.checkpoint).toBe('100'); // part of a is still buffered
    shard.release(a, 6);
    expect(shard.checkpoint).toBe('110');
    shard.release(b, 10);
    expect(shard.checkpoint).toBe('130'); // b unblocks the already-released c
  });

  it('a batch releases its positions as counts per segment, once', () => {
    const { l, released } = listener();
    const shard = new ShardProgress('s', undefined, l);
    const one = shard.open('5', 3, 30);
    const two = shard.open('9', 2, 20);
    const first = new Acknowledgements();
    const second = new Acknowledgements();
    // A buffer cut in the middle of segment `one`.
    first.add(one);
    first.add(one);
    second.add(one);
    second.add(two);
    second.add(two);
    expect(first.records).toBe(2);

    second.release();
    expect(shard.checkpoint).toBeUndefined();
    expect(released).toEqual([two]);
    first.release();
    expect(shard.checkpoint).toBe('9');
    expect(released).toEqual([two, one]);
    expect(() => first.release()).toThrow(/already released/);
  });

  it('refuses to release more records than a segment holds', () => {
    const shard = new ShardProgress('s', undefined, listener().l);
    const seg = shard.open('1', 1, 1);
    shard.release(seg, 1);
    expect(() => shard.release(seg, 1)).toThrow(/double release/);
  });

  it('is complete only when read to its end and every segment is released', () => {
    const { l, progressedCount } = listener();
    const shard = new ShardProgress('s', undefined, l);
    const seg = shard.open('7', 2, 2);
    shard.markReadToEnd();
    expect(shard.complete).toBe(false);
    shard.release(seg, 2);
    expect(shard.complete).toBe(true);
    expect(progressedCount()).toBeGreaterThan(0);
    expect(() => shard.open('8', 1, 1)).toThrow(/read to its end/);
  });

  it('a read whose records all vanished moves the checkpoint at once', () => {
    const shard = new ShardProgress('s', '3', listener().l);
    shard.open('4', 0, 0);
    expect(shard.checkpoint).toBe('4');
  });
});
