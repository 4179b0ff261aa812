import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ShardProgress, type Segment } from '../src/ack.js';
import { ByteBudget } from '../src/budget.js';
import { ManualClock } from '../src/clock.js';
import { DeliveryStream } from '../src/delivery-stream.js';
import { DeliveryError, type DeliveryReceipt, type Destination, type EncodedBatch, type ItemFailure } from '../src/destination.js';
import type { DeadLetter, DeadLetterParking, ParkResult } from '../src/dlq.js';
import { silentLogger } from '../src/log.js';
import type { PipelineSettings } from '../src/pipeline-settings.js';
import type { RecordSink, Source, SourceRecord } from '../src/records.js';
import type { TransformPool } from '../src/transform/pool.js';
import { suiteTransformPool } from './helpers/harness.js';

/**
 * The delivery path driven by hand: a source that hands on what the test gives it, a destination
 * that answers as the test says, time on a ManualClock. No real sleep anywhere.
 */
class HandSource implements Source {
  readonly identity = 'hand';
  readonly released: Segment[] = [];
  readonly progress = new ShardProgress('shard-1', undefined, { segmentReleased: (s) => this.released.push(s), progressed: () => undefined });
  private sink: RecordSink | undefined;
  private finish: (() => void) | undefined;
  private sequence = 0;

  run(sink: RecordSink): Promise<void> {
    this.sink = sink;
    return new Promise((resolve) => (this.finish = resolve));
  }
  stop(): void {
    this.finish?.();
  }
  get outstandingSegments(): number {
    return this.progress.outstandingSegments;
  }
  async close(): Promise<boolean> {
    return true;
  }
  status() {
    return {};
  }
  /** One read of these payloads, as one segment. */
  put(payloads: string[]): SourceRecord[] {
    const first = this.sequence + 1;
    this.sequence += payloads.length;
    const segment = this.progress.open(String(this.sequence), payloads.length, 0);
    const records = payloads.map((p, i) => ({
      data: Buffer.from(p),
      partitionKey: 'k',
      shardId: 'shard-1',
      sequenceNumber: String(first + i),
      subSequenceNumber: 0,
      approximateArrivalTimestamp: 0,
      segment,
    }));
    this.sink!.accept(records);
    return records;
  }
}

type Answer = (batch: EncodedBatch) => DeliveryReceipt | Error;

class HandDestination implements Destination {
  readonly attempts: Array<{ at: number; records: string[] }> = [];
  constructor(
    private readonly clock: ManualClock,
    public answer: Answer,
  ) {}
  async deliver(batch: EncodedBatch): Promise<DeliveryReceipt> {
    this.attempts.push({ at: this.clock.now(), records: batch.recordData ? batch.recordData.map((d) => d.toString()) : Buffer.concat(batch.chunks).toString().split('\n').filter(Boolean) });
    const answer = this.answer(batch);
    if (answer instanceof Error) throw answer;
    return answer;
  }
  async close() {}
}

class MemoryParking implements DeadLetterParking {
  readonly deliveryStreamName = 'unit';
  readonly parked: DeadLetter[] = [];
  full = false;
  constructor(private readonly maxBytes = Infinity) {}
  async park(letters: readonly DeadLetter[]): Promise<ParkResult> {
    if (this.full) return { parked: 0, tooLarge: [], rest: letters };
    const tooLarge = letters.filter((l) => l.data.length > this.maxBytes);
    const fit = letters.filter((l) => l.data.length <= this.maxBytes);
    this.parked.push(...fit);
    return { parked: fit.length, tooLarge, rest: [] };
  }
}

const recordOriented = (retrySeconds: number): PipelineSettings => ({
  buffer: { sizeBytes: 1 << 20, intervalMs: 60_000, encoding: 'UNCOMPRESSED', appendNewlineDelimiter: false, maxRecords: 1_000 },
  errorOutputEncoding: 'UNCOMPRESSED',
  recordOriented: true,
  retry: { durationMs: retrySeconds * 1000, errorOutputType: 'http-endpoint-failed' },
});

function setUp(pipeline: PipelineSettings, answer: Answer, parking?: MemoryParking, extra: { budget?: ByteBudget; transforms?: TransformPool } = {}) {
  const clock = new ManualClock();
  const source = new HandSource();
  const destination = new HandDestination(clock, answer);
  const errorOutput = new HandDestination(clock, (batch) => ({ location: `error output (${batch.records})` }));
  const stream = new DeliveryStream({
    name: 'unit',
    source,
    destination,
    errorOutput,
    pipeline,
    ...(parking ? { deadLetters: parking } : {}),
    destinationKey: 'httpEndpointDestination',
    identity: { region: 'us-east-1', deliveryStreamArn: 'arn', source: { event: {} } },
    clock,
    log: silentLogger,
    ...extra,
  });
  void stream.start();
  return { clock, source, destination, errorOutput, stream };
}

/** Lets promises settle, advancing the clock a step at a time until the condition holds. */
async function advanceUntil(clock: ManualClock, condition: () => boolean, stepMs = 1_000, maxSteps = 100_000): Promise<void> {
  for (let i = 0; i < maxSteps; i++) {
    for (let j = 0; j < 5; j++) await new Promise((resolve) => setImmediate(resolve));
    if (condition()) return;
    clock.advance(stepMs);
  }
  throw new Error('condition never held');
}

const errorLines = (d: HandDestination) => d.attempts.flatMap((a) => a.records);

describe('delivery with retries, on a manual clock', () => {
  it('retries a failing batch with backoff until the retry duration runs out, then ends its records in the error output; the checkpoint passes them', async () => {
    const { clock, source, destination, errorOutput, stream } = setUp(recordOriented(300), () => new DeliveryError('the endpoint answered 503', 'HttpEndpoint.DestinationException', true));
    const start = clock.now();
    source.put(['a', 'b', 'c']);
    stream.flush();
    await advanceUntil(clock, () => source.progress.checkpoint === '3');
    const times = destination.attempts.map((a) => a.at - start);
    // Each delay doubles from 1 s (jittered over its upper half), capped at 120 s; the last attempt falls within 300 s.
    for (let i = 1; i < times.length; i++) {
      const delay = times[i]! - times[i - 1]!;
      const ceiling = Math.min(120_000, 1_000 * 2 ** (i - 1));
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2 - 1_000);
      expect(delay).toBeLessThanOrEqual(ceiling + 1_000);
    }
    expect(times.at(-1)!).toBeLessThanOrEqual(300_000);
    expect(times.length).toBeGreaterThanOrEqual(5);
    // The error output gets each record once, as a Firehose error line with its bytes.
    await advanceUntil(clock, () => errorOutput.attempts.length > 0);
    const lines = errorLines(errorOutput).map((l) => JSON.parse(l) as { errorCode: string; rawData: string; attemptsMade: number });
    expect(lines.map((l) => Buffer.from(l.rawData, 'base64').toString()).sort()).toEqual(['a', 'b', 'c']);
    expect(lines.every((l) => l.errorCode === 'HttpEndpoint.DestinationException' && l.attemptsMade === times.length)).toBe(true);
    expect(stream.stats.recordsToErrorOutput).toBe(3);
    expect(stream.stats.recordsDelivered).toBe(0);
    expect(stream.stats.deliveryAttemptsFailed).toBe(times.length);
  });

  it('caps the backoff at 120 s however long the retry duration', async () => {
    const { clock, source, destination, stream } = setUp(recordOriented(7_200), () => new DeliveryError('down', 'HttpEndpoint.DestinationException', true));
    source.put(['x']);
    stream.flush();
    await advanceUntil(clock, () => destination.attempts.length >= 14, 5_000);
    const gaps = destination.attempts.slice(1).map((a, i) => a.at - destination.attempts[i]!.at);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(125_000);
    expect(gaps.slice(-3).every((g) => g >= 60_000)).toBe(true);
  });

  it('a permanent error ends the batch at once, without retrying', async () => {
    const { clock, source, destination, stream } = setUp(recordOriented(300), () => new DeliveryError('413', 'HttpEndpoint.PayloadTooLarge', false));
    source.put(['p', 'q']);
    stream.flush();
    await advanceUntil(clock, () => source.progress.checkpoint === '2');
    expect(destination.attempts).toHaveLength(1);
    expect(stream.stats.recordsToErrorOutput).toBe(2);
  });

  it('a destination that half-succeeds: only what it did not take is retried; what fails for good ends alone', async () => {
    const { clock, source, destination, errorOutput, stream } = setUp(recordOriented(300), (batch) => ({
      location: 'cluster',
      failed: (batch.recordData ?? []).flatMap((d, index): ItemFailure[] => {
        const text = d.toString();
        if (text.startsWith('bad')) return [{ index, retryable: false, code: 'OpenSearch.mapper_parsing_exception', message: '400' }];
        if (text.startsWith('busy') && destination.attempts.length < 3) return [{ index, retryable: true, code: 'OpenSearch.es_rejected', message: '429' }];
        return [];
      }),
    }));
    source.put(['ok-1', 'busy-1', 'bad-1', 'ok-2', 'busy-2']);
    stream.flush();
    await advanceUntil(clock, () => source.progress.checkpoint === '5');
    expect(destination.attempts.map((a) => a.records)).toEqual([['ok-1', 'busy-1', 'bad-1', 'ok-2', 'busy-2'], ['busy-1', 'busy-2'], ['busy-1', 'busy-2']]);
    expect(stream.stats.recordsDelivered).toBe(4);
    await advanceUntil(clock, () => errorOutput.attempts.length > 0);
    const lines = errorLines(errorOutput).map((l) => JSON.parse(l) as { errorCode: string; rawData: string; attemptsMade: number });
    expect(lines.map((l) => [Buffer.from(l.rawData, 'base64').toString(), l.errorCode, l.attemptsMade])).toEqual([['bad-1', 'OpenSearch.mapper_parsing_exception', 1]]);
    expect(stream.stats.recordsToErrorOutput).toBe(1);
  });

  it('with the DLQ: final failures are parked and the checkpoint passes them; while the DLQ is full, positions are held', async () => {
    const parking = new MemoryParking();
    parking.full = true;
    const { clock, source, stream } = setUp(recordOriented(10), () => new DeliveryError('503', 'HttpEndpoint.DestinationException', true), parking);
    source.put(['m', 'n']);
    stream.flush();
    // Out of retry time, but the queue is full: nothing is released, however long it stays full.
    for (let i = 0; i < 30; i++) {
      await advanceUntil(clock, () => true);
      clock.advance(10_000);
    }
    expect(source.progress.checkpoint).toBeUndefined();
    expect(parking.parked).toHaveLength(0);
    parking.full = false;
    await advanceUntil(clock, () => source.progress.checkpoint === '2');
    expect(parking.parked.map((l) => Buffer.from(l.data, 'base64').toString()).sort()).toEqual(['m', 'n']);
    expect(parking.parked[0]).toMatchObject({ errorCode: 'HttpEndpoint.DestinationException', errorOutputType: 'http-endpoint-failed', destination: 'httpEndpointDestination', shardId: 'shard-1' });
    expect(stream.stats.recordsToDeadLetterQueue).toBe(2);
    expect(stream.stats.backupCopies).toBe(2);
  });

  it('a record too large for the whole DLQ bound ends in the error output instead of waiting forever', async () => {
    const parking = new MemoryParking(8);
    const { clock, source, stream } = setUp(recordOriented(0), () => new DeliveryError('413', 'HttpEndpoint.PayloadTooLarge', false), parking);
    source.put(['tiny', 'this one is far too large for the bound']);
    stream.flush();
    await advanceUntil(clock, () => source.progress.checkpoint === '2');
    expect(parking.parked.map((l) => Buffer.from(l.data, 'base64').toString())).toEqual(['tiny']);
    expect(stream.stats.recordsToErrorOutput).toBe(1);
  });
});

describe('backpressure, on a manual clock', () => {
  const blueprint = fileURLToPath(new URL('./fixtures/transforms/blueprint.js', import.meta.url));
  const pool = suiteTransformPool(blueprint);

  const MiB = 1024 * 1024;
  const transformed: PipelineSettings = {
    ...recordOriented(10),
    processing: { transform: { module: blueprint, numberOfRetries: 0, bufferSizeBytes: 8 * MiB, bufferIntervalMs: 60_000, timeoutMs: 5_000, concurrency: 1, environment: {} } },
  };
  /** A reader asks for more room than is left, and waits: the pressure every delivery stream hears. */
  function readerWaits(budget: ByteBudget): AbortController {
    const giveUp = new AbortController();
    void budget.reserve(budget.limit, giveUp.signal);
    return giveUp;
  }

  it('a reader waiting for room invokes the transform early only when its buffer holds a good share of the budget (not a small invocation each time)', async () => {
    const budget = new ByteBudget(16 * MiB);
    budget.take(1); // something is held, so the reservation below has to wait
    const { source, stream, destination } = setUp(transformed, () => ({ location: 'ok' }), undefined, { budget, transforms: pool() });
    const payload = 'x'.repeat(64 * 1024);
    source.put(Array.from({ length: 16 }, () => payload)); // 1 MiB: a sixteenth of the budget
    const small = readerWaits(budget);
    await new Promise((resolve) => setImmediate(resolve));
    expect(stream.transform!.stats.invocations).toBe(0);
    expect(stream.transform!.pending).toBe(16);
    small.abort();

    source.put(Array.from({ length: 48 }, () => payload)); // 4 MiB: a quarter
    const share = readerWaits(budget);
    await stream.transform!.drain();
    expect(stream.transform!.stats.invocations).toBe(1);
    expect(stream.transform!.pending).toBe(0);
    expect(stream.stats.backpressureSeals).toBe(1);
    share.abort();
    stream.flush();
    await stream.stop(5_000);
    expect(destination.attempts.flatMap((a) => a.records)).toEqual(Array.from({ length: 64 }, () => payload.toUpperCase()));
  });

  it('streams sharing the budget: a reader waiting for room seals the largest open buffers first, though none alone holds a quarter, until what stays open is under a quarter', async () => {
    const budget = new ByteBudget(20 * MiB);
    const wide: PipelineSettings = { ...recordOriented(10), buffer: { ...recordOriented(10).buffer, sizeBytes: 64 * MiB, maxRecords: 100_000 } };
    const larger = setUp(wide, () => ({ location: 'ok' }), undefined, { budget });
    const smaller = setUp(wide, () => ({ location: 'ok' }), undefined, { budget });
    const payload = 'x'.repeat(64 * 1024);
    larger.source.put(Array.from({ length: 72 }, () => payload)); // 4.5 MiB open
    smaller.source.put(Array.from({ length: 64 }, () => payload)); // 4 MiB open: 8.5 of 20 in all
    const reader = readerWaits(budget);
    await new Promise((resolve) => setImmediate(resolve));
    expect(larger.stream.stats.backpressureSeals).toBe(1);
    expect(smaller.stream.stats.backpressureSeals).toBe(0); // 4 MiB left open: under a quarter
    await advanceUntil(larger.clock, () => larger.source.progress.checkpoint === '72');
    expect(larger.destination.attempts.flatMap((a) => a.records)).toHaveLength(72);
    expect(smaller.destination.attempts).toHaveLength(0);
    reader.abort();
    for (const { stream } of [larger, smaller]) {
      stream.flush();
      await stream.stop(5_000);
    }
    expect(smaller.source.progress.checkpoint).toBe('64');
    expect(budget.held).toBe(0);
  });
});
