import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../src/budget.js';

const MiB = 1024 * 1024;
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('the byte budget', () => {
  it('a reader waits for room, and that wait asks for the buffers to be sealed', async () => {
    const budget = new ByteBudget(20 * MiB);
    let pressure = 0;
    budget.onPressure({ openBytes: () => budget.held, seal: () => pressure++ });
    budget.take(15 * MiB);
    let reserved = false;
    void budget.reserve(10 * MiB).then(() => (reserved = true));
    await turn();
    expect(reserved).toBe(false);
    expect(pressure).toBe(1);
    budget.give(15 * MiB);
    await turn();
    expect(reserved).toBe(true);
    expect(budget.held).toBe(10 * MiB);
  });

  it('readers wait while the compressor is behind, without sealing anything; reads in flight count, so one finished read lets one more reader in, not all', async () => {
    const budget = new ByteBudget(256 * MiB, 16 * MiB);
    let pressure = 0;
    budget.onPressure({ openBytes: () => budget.held, seal: () => pressure++ });
    // 12 MiB of raw chunks handed to the compressor, 1 MiB being read: under 16, one more read may start.
    budget.take(12 * MiB);
    budget.compressing(12 * MiB);
    expect(await budget.reserve(MiB)).toBe(true);
    const woken: number[] = [];
    for (let i = 0; i < 3; i++) void budget.reserve(10 * MiB).then(() => woken.push(i));
    await turn();
    expect(woken).toEqual([0]);
    // One 4 MiB chunk compressed (to 1 MiB): 8 raw + 11 in flight is still past 16.
    budget.compressed(4 * MiB);
    budget.resize(4 * MiB, MiB);
    await turn();
    expect(woken).toEqual([0]);
    // The 10 MiB read is over (its records took their own bytes): 8 + 1 lets one more in.
    budget.unreserve(10 * MiB);
    await turn();
    expect(woken).toEqual([0, 1]);
    // Everything compressed: nothing holds readers back.
    budget.compressed(8 * MiB);
    await turn();
    expect(woken).toEqual([0, 1, 2]);
    expect(pressure).toBe(0);
    expect(budget.held).toBe(9 * MiB + 21 * MiB);
    for (const bytes of [MiB, 10 * MiB, 10 * MiB]) budget.unreserve(bytes);
    expect(budget.held).toBe(9 * MiB);
  });

  it('a reader that waited for the compressor and now waits for room asks for the seal then', async () => {
    const budget = new ByteBudget(20 * MiB, 8 * MiB);
    let pressure = 0;
    budget.onPressure({ openBytes: () => budget.held, seal: () => pressure++ });
    budget.take(8 * MiB);
    budget.compressing(8 * MiB);
    let reserved = false;
    void budget.reserve(10 * MiB).then(() => (reserved = true));
    await turn();
    expect(pressure).toBe(0);
    // Compressed, but the open buffer now holds compressed bytes and other records: no room for the read.
    budget.take(10 * MiB);
    budget.compressed(8 * MiB);
    await turn();
    expect(reserved).toBe(false);
    expect(pressure).toBeGreaterThan(0);
    budget.give(10 * MiB);
    await turn();
    expect(reserved).toBe(true);
  });
});
