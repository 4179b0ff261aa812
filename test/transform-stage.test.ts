import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ShardProgress } from '../src/ack.js';
import { ManualClock } from '../src/clock.js';
import type { Failure } from '../src/failure.js';
import { silentLogger } from '../src/log.js';
import type { SourceRecord } from '../src/records.js';
import { TransformStage } from '../src/transform/stage.js';
import { suiteTransformPool } from './helpers/harness.js';

const blueprint = fileURLToPath(new URL('./fixtures/transforms/blueprint.js', import.meta.url));
const identity = { deliveryStreamArn: 'arn', region: 'us-east-1', source: { event: { sourceKinesisStreamArn: 'arn' }, recordMetadataKey: 'kinesisRecordMetadata' } };

function recordsOf(texts: string[]): SourceRecord[] {
  const shard = new ShardProgress('s', undefined, { segmentReleased() {}, progressed() {} });
  const segment = shard.open('9', texts.length, 0);
  return texts.map((t, i) => ({ data: Buffer.from(t), partitionKey: 'k', shardId: 's', sequenceNumber: String(i), subSequenceNumber: 0, approximateArrivalTimestamp: 0, segment }));
}

describe('transform stage buffering', () => {
  const pool = suiteTransformPool(blueprint);

  function stage(clock: ManualClock, bufferSizeBytes: number) {
    const out: string[] = [];
    const failed: Failure[] = [];
    const s = new TransformStage(
      { module: blueprint, numberOfRetries: 0, bufferSizeBytes, bufferIntervalMs: 60_000, timeoutMs: 5_000, concurrency: 1, environment: {} },
      pool(),
      identity,
      clock,
      { transformed: (r) => out.push(r.data.toString()), dropped: () => undefined, failed: (_r, f) => failed.push(f) },
      silentLogger,
    );
    return { s, out, failed };
  }

  it('invokes the handler when the processor buffer interval has passed, not before', async () => {
    const clock = new ManualClock();
    const { s, out } = stage(clock, 1024 * 1024);
    for (const r of recordsOf(['a', 'b', 'c'])) s.accept(r);
    clock.advance(59_999);
    await s.drain();
    expect(out).toEqual([]);
    clock.advance(1);
    await s.drain();
    expect(out).toEqual(['A', 'B', 'C']);
  });

  it('invokes the handler as soon as the processor buffer size is reached', async () => {
    const clock = new ManualClock();
    const { s, out } = stage(clock, 10);
    for (const r of recordsOf(['12345', '67890', 'x'])) s.accept(r);
    await s.drain();
    expect(out).toEqual(['12345', '67890']); // the third waits for size, interval or shutdown
    s.flush();
    await s.drain();
    expect(out).toEqual(['12345', '67890', 'X']);
  });
});
