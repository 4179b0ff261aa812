import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { redisKeys } from '../src/checkpoints.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { firehose } from './helpers/cli.js';
import { SequenceTracker, checkpoints, createStream, putAll, readObjects, serviceYaml, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'exactly';
const BLUEPRINT = fileURLToPath(new URL('./fixtures/transforms/blueprint.js', import.meta.url));

describe('exactly-once S3 objects (s3Destination.exactlyOnce)', () => {
  const peers = suitePeers([BUCKET], { redisAppendOnly: true });

  /** A crash at a failpoint, then a restart: every record is in exactly one object, and the interrupted batch is re-formed byte for byte. */
  async function crashThenRestart(name: string, failpoint: 'after-intent' | 'after-upload', cutBy: 'size' | 'shutdown' = 'size', transform = false) {
    await createStream(peers.kinesisClient, name, 2);
    // A transform that upper-cases every record (AWS's blueprint), invoked on small buffers: many invocations at once.
    const processing = `
      processingConfiguration:
        enabled: true
        processors:
          - type: Lambda
            parameters: { module: "${BLUEPRINT}", bufferSizeInMBs: 0.2 }`;
    const yaml = serviceYaml(peers, [{ deliveryStreamName: name, streamName: name, bucket: BUCKET, sizeInMBs: 1, appendNewlineDelimiter: true, s3Extra: `      exactlyOnce: true${transform ? processing : ''}` }]);
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-exactly-')), 'streams.yaml');
    await writeFile(configPath, yaml);
    const ids: string[] = [];
    const sequences = new SequenceTracker();
    const put = async (count: number) => {
      const batch = Array.from({ length: count }, (_, i) => `${name}-${ids.length + i}`);
      (await putAll(peers.kinesisClient, name, batch.map((id, i) => ({ data: Buffer.from(`${id} ${'x'.repeat(300 + (i % 200))}`), partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
      ids.push(...batch);
    };
    // By size: 6,000 records fill 1 MB buffers. By shutdown: 1,000 do not, so SIGTERM cuts the batches.
    await put(cutBy === 'size' ? 6_000 : 1_000);

    const crashing = firehose(['run', '--config', configPath, '--worker-id', 'w1'], { FIREHOSE_LOG_LEVEL: 'info', FIREHOSE_FAILPOINTS: `${failpoint}:1` });
    if (cutBy === 'shutdown') {
      await waitFor(() => (crashing.stderr().match(/"reading shard"/g) ?? []).length === 2, 20_000, 'both shards read');
      await new Promise((r) => setTimeout(r, 2_000));
      crashing.child.kill('SIGTERM');
    }
    expect((await crashing.exited).signal).toBe('SIGKILL');
    // More records after the crash: a batch formed afresh would take them in; the re-formed one ends where its intent does.
    if (cutBy === 'shutdown') await put(1_000);
    expect(crashing.stderr()).toContain(`failpoint ${failpoint}: crashing`);
    // Each shard's batch is recorded before its upload; the shards' batches go in parallel.
    const open = Object.values(await peers.redisClient.hgetall(redisKeys.intents(name, `kinesis/us-east-1/${name}`))).map((json) => JSON.parse(json) as { key: string });
    expect(open.length).toBeGreaterThanOrEqual(1);
    const before = await readObjects(peers.s3Client, BUCKET, `${name}/`);
    if (failpoint === 'after-intent') expect(before).toEqual([]);
    else expect(before.length).toBeGreaterThanOrEqual(1);
    for (const o of before) expect(open.map((i) => i.key)).toContain(o.key);

    // Restarted (under the same worker id, so it takes its leases back at once): the open intent is re-formed first.
    let running = firehose(['run', '--config', configPath, '--worker-id', 'w1'], { FIREHOSE_LOG_LEVEL: 'info' });
    const last = Object.fromEntries(sequences.lastByShard);
    for (let round = 1; ; round++) {
      await new Promise((r) => setTimeout(r, 3_000));
      running.child.kill('SIGTERM');
      expect((await running.exited).code).toBe(0);
      if (round === 1) expect(running.stderr()).toMatch(/re-forming the batch an earlier attempt recorded/);
      if (JSON.stringify(await checkpoints(peers.redisClient, name)) === JSON.stringify(last) || round === 4) break;
      running = firehose(['run', '--config', configPath, '--worker-id', 'w1'], { FIREHOSE_LOG_LEVEL: 'info' });
    }
    expect(await checkpoints(peers.redisClient, name)).toEqual(last);
    expect(await peers.redisClient.hlen(redisKeys.intents(name, `kinesis/us-east-1/${name}`))).toBe(0);

    const objects = await readObjects(peers.s3Client, BUCKET, `${name}/`);
    // Named from the data: <prefix>YYYY/MM/dd/HH/<stream>-<shard>-<first sequence number>.gz
    for (const o of objects) expect(o.key).toMatch(new RegExp(`^${name}/\\d{4}/\\d\\d/\\d\\d/\\d\\d/${name}-shardId-\\d{12}-\\d+\\.gz$`));
    for (const { key } of open) expect(objects.map((o) => o.key)).toContain(key);
    // s3rver ignores If-None-Match, so a re-formed batch already uploaded was uploaded again: the same bytes.
    for (const o of before) expect(objects.find((x) => x.key === o.key)!.body.equals(o.body)).toBe(true);
    const delivered = objects.flatMap((o) => o.body.toString().split('\n').filter(Boolean).map((line) => line.split(' ')[0]!));
    expect(delivered.length).toBe(ids.length); // none twice
    expect(new Set(delivered)).toEqual(new Set(transform ? ids.map((id) => id.toUpperCase()) : ids));
  }

  it('a crash after the upload, before the commit: the restart re-forms the same object byte for byte and commits it; every record once', async () => {
    await crashThenRestart('uploaded', 'after-upload');
  });

  it('a batch cut by SIGTERM crashes after its upload; more records arrive; the restart cuts the re-formed batch where its intent ends: the same object, byte for byte', async () => {
    await crashThenRestart('cut', 'after-upload', 'shutdown');
  });

  it('with a deterministic transform (its invocations run at once, their results handed on in order): a crash after the upload, the same object re-formed', async () => {
    await crashThenRestart('transformed', 'after-upload', 'size', true);
  });

  it('a crash after the intent, before the upload: the restart writes the object under the intent\'s key; every record once', async () => {
    await crashThenRestart('intended', 'after-intent');
  });

  it('fenced: a batch read under a lease another worker took is not written and not committed (its new owner writes it)', async () => {
    await createStream(peers.kinesisClient, 'stolen', 1);
    const yaml = serviceYaml(peers, [{ deliveryStreamName: 'stolen', streamName: 'stolen', bucket: BUCKET, sizeInMBs: 1, s3Extra: '      exactlyOnce: true' }]);
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    const stream = service.streams[0]!;
    try {
      await putAll(peers.kinesisClient, 'stolen', Array.from({ length: 200 }, (_, i) => ({ data: Buffer.from(`stolen-${i}`), partitionKey: `k${i}` })));
      await waitFor(() => stream.stats.recordsRead === 200, 20_000, 'the records read');
      // Another worker takes the lease (what its take script writes: a new owner, the epoch raised).
      const leases = redisKeys.leases('stolen', 'kinesis/us-east-1/stolen');
      const lease = JSON.parse((await peers.redisClient.hget(leases, 'shardId-000000000000'))!) as { owner: string; epoch: number };
      await peers.redisClient.hset(leases, 'shardId-000000000000', JSON.stringify({ ...lease, owner: 'another-worker', epoch: lease.epoch + 1 }));
      stream.flush();
      await waitFor(() => stream.stats.batchesFenced > 0, 10_000, 'the batch fenced');
      expect(await readObjects(peers.s3Client, BUCKET, 'stolen/')).toEqual([]);
      expect(await peers.redisClient.hlen(redisKeys.intents('stolen', 'kinesis/us-east-1/stolen'))).toBe(0);
      expect(await checkpoints(peers.redisClient, 'stolen')).toEqual({});
    } finally {
      await service.stop();
    }
  });
});
