import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { startKinesisProtocolServer } from '../bench/kinesis-server.js';
import { ManualClock } from '../src/clock.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { MiB } from '../src/units.js';
import { checkpoints, suitePeers, waitFor } from './helpers/harness.js';
import type { SourceRecord } from '../src/records.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const BUCKET = 'bounded';

/**
 * Memory is bounded by the budget, by accounting: a server speaking the Kinesis protocol answers
 * 10 MB responses to many shards at once; readers reserve a response before they ask for it.
 */
describe('memory and backpressure', () => {
  const peers = suitePeers([BUCKET]);
  const yaml = (name: string, endpoint: string, budgetMiB: number, sizeInMBs: number, compression: string) => `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 60, memoryBudgetInMBs: ${budgetMiB} }
deliveryStreams:
  - deliveryStreamName: ${name}
    kinesisStreamSource: { streamName: ${name}, endpoint: "${endpoint}", idleTimeBetweenReadsInMillis: 200 }
    s3Destination:
      bucket: ${BUCKET}
      prefix: "${name}/"
      endpoint: "${peers.s3.endpoint}"
      compressionFormat: ${compression}
      bufferingHints: { sizeInMBs: ${sizeInMBs}, intervalInSeconds: 60 }
`;

  it('26 shards each 11 MB behind: what memory holds never passes the budget, reading pauses and resumes, and everything is delivered and checkpointed', async () => {
    const shards = 26;
    const pool = Array.from({ length: 64 }, () => randomBytes(9_000));
    const kinesis = await startKinesisProtocolServer({ shards, bytesPerSecondPerShard: 110 * MiB, offerMs: 100, startInMs: 0, pool });
    await new Promise((resolve) => setTimeout(resolve, 200)); // every shard's backlog offered
    const clock = new ManualClock();
    const service = await startService(parseConfig(yaml('backlog', kinesis.endpoint, 64, 32, 'UNCOMPRESSED')), { log: silentLogger, clock });
    try {
      const total = Array.from({ length: shards }, (_, s) => kinesis.offered(s)).reduce((a, b) => a + b, 0);
      const stream = service.streams[0]!;
      const ticker = process.env.DEBUG_E2E ? setInterval(() => console.log(JSON.stringify({ ...stream.stats, held: service.budget.held, paused: service.budget.pausedMs })), 2_000) : undefined;
      await waitFor(() => stream.stats.recordsRead === total && stream.stats.recordsDelivered + stream.bufferedRecords === total, 120_000, 'every record read, and delivered but the last buffer');
      clock.advance(60_000); // the last, partial buffer goes when its interval is up
      await waitFor(() => stream.stats.recordsDelivered === total, 30_000, 'every record delivered');
      clearInterval(ticker);
      expect(stream.stats.bytesRead).toBeGreaterThan(4 * service.budget.limit);
      expect(service.budget.peakHeld).toBeLessThanOrEqual(service.budget.limit);
      expect(service.budget.pausedMs).toBeGreaterThan(0);
      // Readers waiting while a buffer held a good share of the budget sealed it early.
      expect(stream.stats.backpressureSeals).toBeGreaterThan(0);
      const expected = Object.fromEntries(Array.from({ length: shards }, (_, s) => [kinesis.shardId(s), kinesis.sequenceNumber(s, kinesis.offered(s) - 1)]));
      const sorted = (o: Record<string, string>) => JSON.stringify(Object.entries(o).sort());
      await waitFor(async () => sorted(await checkpoints(peers.redisClient, 'backlog')) === sorted(expected), 10_000, 'checkpoints at each shard\'s last record');
    } finally {
      expect(await service.stop()).toBe(true);
      await kinesis.close();
    }
  });

  it('one shard with a 100 MB backlog of 9 KB records and 1 MB / 60 s hints is delivered at the read rate — no buffer waits out its interval — and the checkpoint follows', async () => {
    // Text (base64 of random bytes), as logs are: gzip makes it smaller, never larger.
    const pool = Array.from({ length: 64 }, () => Buffer.from(randomBytes(6_750).toString('base64')));
    const kinesis = await startKinesisProtocolServer({ shards: 1, bytesPerSecondPerShard: 1_000 * MiB, offerMs: 100, startInMs: 0, pool });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Time stands still for the buffers: an interval seal can never fire, so all of it must go by size or backpressure.
    const clock = new ManualClock();
    const service = await startService(parseConfig(yaml('catchup', kinesis.endpoint, 16, 1, 'GZIP')), { log: silentLogger, clock });
    try {
      const total = kinesis.offered(0);
      expect(total * 9_000).toBeGreaterThan(99 * MiB);
      const stream = service.streams[0]!;
      // All of it is read and delivered but the last, partial buffer, with no interval having passed…
      await waitFor(() => stream.stats.recordsRead === total && stream.stats.recordsDelivered + stream.bufferedRecords === total, 120_000, 'the backlog read and delivered by size');
      expect(stream.stats.objectsDelivered).toBeGreaterThanOrEqual(95);
      expect(stream.bufferedRecords).toBeLessThan((1 * MiB) / 9_000 + 1);
      // …which goes when its interval is up, as Firehose's does.
      clock.advance(60_000);
      await waitFor(() => stream.stats.recordsDelivered === total, 30_000, 'the last buffer delivered');
      expect(service.budget.peakHeld).toBeLessThanOrEqual(service.budget.limit);
      await waitFor(async () => (await checkpoints(peers.redisClient, 'catchup'))[kinesis.shardId(0)] === kinesis.sequenceNumber(0, total - 1), 10_000, 'the checkpoint at the last record');
    } finally {
      expect(await service.stop()).toBe(true);
      await kinesis.close();
    }
  });

  it('a reader waiting for room holds no response: once its records are copied into the buffers, every response\'s bytes can be collected', async () => {
    const shards = 6;
    const pool = Array.from({ length: 64 }, () => randomBytes(9_000));
    const kinesis = await startKinesisProtocolServer({ shards, bytesPerSecondPerShard: 200 * MiB, offerMs: 100, startInMs: 0, pool });
    await new Promise((resolve) => setTimeout(resolve, 200)); // 20 MB behind on each shard: two responses
    const clock = new ManualClock();
    const service = await startService(parseConfig(yaml('waiting', kinesis.endpoint, 128, 64, 'UNCOMPRESSED')), { log: silentLogger, clock });
    const stream = service.streams[0]!;
    const budget = service.budget;
    // Each response's bytes are one buffer: watch them without keeping them.
    const responses: WeakRef<ArrayBufferLike>[] = [];
    const accept = stream.accept.bind(stream);
    let frozen = false;
    stream.accept = (records: readonly SourceRecord[], ...rest) => {
      responses.push(new WeakRef(records[0]!.data.buffer));
      accept(records, ...rest);
      // After as many reads as shards, every reader's next reservation waits: they stop right after handing records on.
      if (!frozen && responses.length >= shards) {
        frozen = true;
        budget.take(budget.limit);
      }
    };
    try {
      await waitFor(() => frozen, 30_000, 'readers reading');
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // every reader at its next reservation
      expect(budget.pausedMs).toBeGreaterThan(0);
      for (let i = 0; i < 3; i++) {
        collectGarbage();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const alive = responses.filter((r) => r.deref() !== undefined).length;
      expect({ responses: responses.length, alive }).toEqual({ responses: responses.length, alive: 0 });
    } finally {
      if (frozen) budget.give(budget.limit);
      const total = Array.from({ length: shards }, (_, s) => kinesis.offered(s)).reduce((a, b) => a + b, 0);
      await waitFor(() => stream.stats.recordsRead === total, 60_000, 'the rest read');
      clock.advance(60_000);
      await waitFor(() => stream.stats.recordsDelivered === total, 30_000, 'every record delivered');
      expect(await service.stop()).toBe(true);
      await kinesis.close();
    }
  });
});
