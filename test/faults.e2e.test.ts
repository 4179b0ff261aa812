import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../destinations/s3/index.js';
import { s3DestinationSchema } from '../destinations/s3/config.js';
import { parseConfig } from '../src/config.js';
import { freePort, startS3rver } from '../src/dev/peers.js';
import { createLogger, silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { firehose } from './helpers/cli.js';
import { startKinesisProxy } from './helpers/kinesis-proxy.js';
import {
  SequenceTracker,
  checkpoints,
  createStream,
  framedRecord,
  multiset,
  putAll,
  readObjects,
  serviceYaml,
  splitFramed,
  suitePeers, waitFor,
  } from './helpers/harness.js';

const BUCKET = 'faults';

function records(tag: string, count: number, size = 200): Buffer[] {
  return Array.from({ length: count }, (_, i) => framedRecord(Buffer.from(`${tag} ${i} ${'.'.repeat(size)}`)));
}

describe('faults: throttling, S3 outage, Redis restart', () => {
  const peers = suitePeers([BUCKET], { redisAppendOnly: true });

  it('backs off on ProvisionedThroughputExceeded, renews expired iterators, and stays within 5 GetRecords/s per shard', async () => {
    await createStream(peers.kinesisClient, 'throttled', 2);
    const proxy = await startKinesisProxy(peers.kinesis.endpoint, { throttleEvery: 3, expireEvery: 7 });
    const yaml = serviceYaml({ ...peers, kinesis: { ...peers.kinesis, endpoint: proxy.endpoint } }, [
      { deliveryStreamName: 'throttled', streamName: 'throttled', bucket: BUCKET },
    ]).replace('idleTimeBetweenReadsInMillis: 200', 'idleTimeBetweenReadsInMillis: 200\n      readLimit: 100');
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    try {
      const input = records('throttled', 3_000);
      await putAll(peers.kinesisClient, 'throttled', input.map((data, i) => ({ data, partitionKey: `p${i}` })));
      await waitFor(() => service.streams[0]!.stats.recordsRead === 3_000, 60_000, 'every record read through the faults');
      expect(await service.stop()).toBe(true);
      const delivered = (await readObjects(peers.s3Client, BUCKET, 'throttled/')).flatMap((o) => splitFramed(o.body));
      expect(multiset(delivered)).toEqual(multiset(input));
      const stats = await proxy.stats();
      expect(stats.injected.ProvisionedThroughputExceededException).toBeGreaterThan(3);
      expect(stats.injected.ExpiredIteratorException).toBeGreaterThan(1);
      expect(stats.busiestSecond).toBeLessThanOrEqual(2 * 5); // 2 shards × 5 GetRecords/s
    } finally {
      await service.stop();
      await proxy.stop();
    }
  });

  it('firehose run reads GetRecords answers written as valid JSON its byte decoder does not expect (escaped / and keys) through the SDK: every record once, checkpointed, counted in /stats and /metrics', async () => {
    await createStream(peers.kinesisClient, 'rewritten', 2);
    // Every answer rewritten, as a server that always writes so: without the SDK's reading, no record would ever be read.
    const proxy = await startKinesisProxy(peers.kinesis.endpoint, { throttleEvery: 1e9, expireEvery: 1e9, rewrite: true });
    const adminPort = await freePort();
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-rewritten-')), 'streams.yaml');
    await writeFile(
      configPath,
      serviceYaml({ ...peers, kinesis: { ...peers.kinesis, endpoint: proxy.endpoint } }, [{ deliveryStreamName: 'rewritten', streamName: 'rewritten', bucket: BUCKET }])
        .replace('leaseDurationInSeconds: 2 }', `leaseDurationInSeconds: 2, admin: { enabled: true, port: ${adminPort} } }`)
        .replace('idleTimeBetweenReadsInMillis: 200', 'idleTimeBetweenReadsInMillis: 200\n      readLimit: 300'),
    );
    const sequences = new SequenceTracker();
    // Binary records: their base64 is full of /, which the answers escape.
    const input = Array.from({ length: 2_000 }, () => framedRecord(randomBytes(300 + Math.floor(Math.random() * 700))));
    for (const r of await putAll(peers.kinesisClient, 'rewritten', input.map((data, i) => ({ data, partitionKey: `p${i}` })))) sequences.note(r.shardId, r.sequenceNumber);
    const running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'warn' }, { ownProcessGroup: true });
    try {
      const stats = async () => {
        try {
          return ((await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { rewritten: { recordsRead: number; responsesReadBySdk: number } }).rewritten;
        } catch {
          return undefined;
        }
      };
      await waitFor(async () => (await stats())?.recordsRead === 2_000, 60_000, 'every record read from the rewritten answers');
      // One declined answer per shard; the shard's later reads went to the SDK directly.
      expect((await stats())!.responsesReadBySdk).toBe(2);
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      expect(metrics).toMatch(/^firehose_kinesis_get_records_read_by_sdk_total\{delivery_stream="rewritten"\} 2$/m);
      // Ctrl-C in the terminal: SIGINT to the whole process group; the buffers are sealed and delivered.
      process.kill(-running.child.pid!, 'SIGINT');
      expect((await running.exited).code, running.stderr()).toBe(0);
      const delivered = (await readObjects(peers.s3Client, BUCKET, 'rewritten/')).flatMap((o) => splitFramed(o.body));
      expect(delivered).toHaveLength(2_000);
      expect(multiset(delivered)).toEqual(multiset(input));
      expect(await checkpoints(peers.redisClient, 'rewritten')).toEqual(Object.fromEntries(sequences.lastByShard));
      expect((await proxy.stats()).injected.rewritten).toBeGreaterThan(4);
      expect(running.stderr().split('\n').filter((w) => w.includes('byte decoder declined'))).toHaveLength(2);
    } finally {
      if (running.child.exitCode === null) running.child.kill('SIGKILL');
      await proxy.stop();
    }
  });

  it('pauses reading at the byte budget while S3 is down, then delivers everything once it is back', async () => {
    await createStream(peers.kinesisClient, 'outage', 2);
    const s3 = await startS3rver([BUCKET]);
    const port = Number(new URL(s3.endpoint).port);
    const yaml = serviceYaml({ ...peers, s3 }, [{ deliveryStreamName: 'outage', streamName: 'outage', bucket: BUCKET, sizeInMBs: 1 }])
      .replace('idleTimeBetweenReadsInMillis: 200', 'idleTimeBetweenReadsInMillis: 200\n      readLimit: 1000')
      .replace('leaseDurationInSeconds: 2 }', 'leaseDurationInSeconds: 2, memoryBudgetInMBs: 16 }');
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    const stream = service.streams[0]!;
    let restarted: Awaited<ReturnType<typeof startS3rver>> | undefined;
    try {
      await s3.stop({ keepDirectory: true }); // the outage: it comes back on the same directory
      // Random base64 compresses about 1.3×: 30 MB of it, compressed, is more than the 16 MiB budget holds.
      const input = Array.from({ length: 30_000 }, (_, i) => framedRecord(Buffer.from(`outage ${i} ${randomBytes(750).toString('base64')}`)));
      await putAll(peers.kinesisClient, 'outage', input.map((data, i) => ({ data, partitionKey: `p${i}` })));
      await waitFor(() => service.budget.pausedMs > 0, 30_000, 'reading to pause at the budget');
      await new Promise((r) => setTimeout(r, 3_000));
      // Nothing was delivered: memory holds the compressed batches being retried and no more than
      // the budget — reading waits, and the records not yet read stay in the stream.
      expect(stream.stats.objectsDelivered).toBe(0);
      expect(service.budget.peakHeld).toBeLessThanOrEqual(service.budget.limit);
      expect(stream.stats.recordsRead).toBeLessThan(30_000);
      expect(stream.stats.deliveryAttemptsFailed).toBeGreaterThan(0);

      restarted = await startS3rver([BUCKET], { port, directory: s3.directory });
      await waitFor(() => stream.stats.recordsRead === 30_000, 120_000, 'reading to resume and finish');
      expect(await service.stop()).toBe(true);
      const client = createS3Client(s3DestinationSchema.parse({ bucket: BUCKET, endpoint: restarted.endpoint }));
      const delivered = (await readObjects(client, BUCKET, 'outage/')).flatMap((o) => splitFramed(o.body));
      client.destroy();
      expect(multiset(delivered)).toEqual(multiset(input));
    } finally {
      await service.stop();
      await restarted?.stop();
    }
  });

  it('keeps delivering while Redis restarts, and writes the checkpoints once it is back', async () => {
    await createStream(peers.kinesisClient, 'redisless', 2);
    const config = parseConfig(serviceYaml(peers, [{ deliveryStreamName: 'redisless', streamName: 'redisless', bucket: BUCKET, sizeInMBs: 1 }]));
    const warnings: string[] = [];
    const service = await startService(config, { log: createLogger('warn', {}, (line) => warnings.push(line)) });
    const stream = service.streams[0]!;
    const sequences = new SequenceTracker();
    const put = async (input: Buffer[]) =>
      (await putAll(peers.kinesisClient, 'redisless', input.map((data, i) => ({ data, partitionKey: `p${i}` })))).forEach((r) =>
        sequences.note(r.shardId, r.sequenceNumber),
      );
    try {
      const first = records('before', 3_000, 1_000);
      await put(first);
      // A shard's read is checkpointed once all of it is delivered: seal the buffer's tail.
      await waitFor(() => stream.stats.recordsRead === 3_000, 30_000, 'the first records read');
      stream.flush();
      await waitFor(async () => Object.keys(await checkpoints(peers.redisClient, 'redisless')).length === 2, 30_000, 'first checkpoints');

      // Redis goes away for 3 s (SIGTERM; AOF on) while records keep flowing and being delivered.
      const restarting = peers.redis.restart(3_000);
      const second = records('during', 3_000, 1_000);
      await put(second);
      await restarting;
      // Writes were attempted while Redis was away, failed, and were kept for later.
      expect(warnings.some((w) => w.includes('checkpoint write failed; will retry'))).toBe(true);
      await waitFor(() => stream.stats.recordsRead === 6_000, 60_000, 'every record read');
      expect(await service.stop()).toBe(true);
      expect(await checkpoints(peers.redisClient, 'redisless')).toEqual(Object.fromEntries(sequences.lastByShard));
      const delivered = (await readObjects(peers.s3Client, BUCKET, 'redisless/')).flatMap((o) => splitFramed(o.body));
      expect(multiset(delivered)).toEqual(multiset([...first, ...second]));
    } finally {
      await service.stop();
    }
  });
});
