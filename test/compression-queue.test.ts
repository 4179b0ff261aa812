import { describe, expect, it } from 'vitest';
import { CompressionQueue } from '../src/codecs.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Jobs the test finishes by hand; `running` is what the queue has started and not yet seen end. */
function harness(queue: CompressionQueue) {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  let running = 0;
  let most = 0;
  const submit = (name: string, bytes: number) =>
    queue.run(bytes, () => {
      started.push(name);
      most = Math.max(most, ++running);
      return new Promise<string>((resolve) =>
        finishers.set(name, () => {
          running--;
          resolve(name);
        }),
      );
    });
  const finish = async (name: string) => {
    finishers.get(name)!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { submit, finish, started, most: () => most };
}

describe('compression queue: bounded by bytes, as many full chunks as slots', () => {
  it('full chunks: as many at once as slots, the rest started in order as each ends', async () => {
    const { submit, finish, started, most } = harness(new CompressionQueue(3, 4 * MiB, 16));
    const done = ['a', 'b', 'c', 'd', 'e'].map((name) => submit(name, 4 * MiB));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual(['a', 'b', 'c']);
    await finish('b');
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    for (const name of ['a', 'c', 'd', 'e']) await finish(name);
    expect(await Promise.all(done)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(most()).toBe(3);
  });

  it('small chunks: many at once, up to the bytes of the slots and the cap on how many', async () => {
    const { submit, finish, started, most } = harness(new CompressionQueue(3, 4 * MiB, 16));
    const done = Array.from({ length: 40 }, (_, i) => submit(`s${i}`, 128 * KiB));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toHaveLength(16);
    for (let i = 0; i < 40; i++) await finish(`s${i}`);
    await Promise.all(done);
    expect(started).toEqual(Array.from({ length: 40 }, (_, i) => `s${i}`)); // in order
    expect(most()).toBe(16);
  });

  it('a full chunk waits behind small ones for room, in order; one larger than every slot runs alone', async () => {
    const { submit, finish, started } = harness(new CompressionQueue(3, 4 * MiB, 16));
    const small = Array.from({ length: 8 }, (_, i) => submit(`s${i}`, MiB));
    const full = submit('full', 4 * MiB);
    const huge = submit('huge', 13 * MiB);
    const after = submit('after', 64 * KiB);
    await new Promise((resolve) => setImmediate(resolve));
    // 8 MiB of small ones and the full chunk fit in 12 MiB; the huge one waits, and what comes after it too.
    expect(started).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 'full']);
    for (let i = 0; i < 8; i++) await finish(`s${i}`);
    expect(started).not.toContain('huge');
    await finish('full');
    expect(started.slice(-1)).toEqual(['huge']);
    await finish('huge');
    expect(started.slice(-1)).toEqual(['after']);
    await finish('after');
    await Promise.all([...small, full, huge, after]);
  });
});
