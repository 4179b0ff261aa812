import { KinesisSource } from '../src/sources/kinesis/index.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregate } from 'aws-kinesis-agg';
import { ManualClock } from '../src/clock.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService, type RunningService } from '../src/service.js';
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
  startPeers,
  waitFor,
  type Peers,
} from './helpers/harness.js';

const MiB = 1024 * 1024;
const BUCKET = 'archive';

/** Mixed sizes from a few bytes to Kinesis' 1 MiB limit; binary, text with newlines, JSON. */
function mixedPayloads(count: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let payload: Buffer;
    if (i % 2000 === 7) payload = randomBytes(MiB - 64 - 9 - Math.floor(Math.random() * 200_000)); // up to the record limit
    else if (i % 200 === 3) payload = randomBytes(20_000 + Math.floor(Math.random() * 100_000));
    else if (i % 10 === 1) payload = randomBytes(1 + Math.floor(Math.random() * 4_000)); // binary, any byte
    else if (i % 10 === 2) payload = Buffer.from(`line one of ${i}\nline two\r\n\nline four\n`);
    else if (i % 10 === 5) payload = Buffer.from(String.fromCharCode(i % 256));
    else payload = Buffer.from(JSON.stringify({ i, user: `u${i % 97}`, pad: 'x'.repeat(i % 600) }));
    out.push(framedRecord(payload));
  }
  return out;
}

describe('Kinesis → buffer → GZIP → S3 with Redis checkpoints', () => {
  let peers: Peers;

  beforeAll(async () => {
    peers = await startPeers([BUCKET]);
  });
  afterAll(async () => {
    await peers?.stop();
  });

  it('delivers 20,000 mixed records from 4 shards byte-for-byte, checkpoints each shard at its last record, and re-delivers nothing after a clean restart', async () => {
    await createStream(peers.kinesisClient, 'mixed', 4);
    await createStream(peers.kinesisClient, 'kpl', 2);
    const yaml = serviceYaml(peers, [
      { deliveryStreamName: 'mixed', streamName: 'mixed', bucket: BUCKET, sizeInMBs: 1 },
      // A second delivery stream in the same process, reading KPL-aggregated records.
      {
        deliveryStreamName: 'kpl',
        streamName: 'kpl',
        bucket: BUCKET,
        compressionFormat: 'UNCOMPRESSED',
        appendNewlineDelimiter: true,
      },
    ]);
    const config = parseConfig(yaml);
    const payloads = mixedPayloads(20_000);
    const userRecords = Array.from({ length: 3_000 }, (_, i) => `user-record-${i}`);
    const service = await startService(config, { log: silentLogger });
    const [mixed, kpl] = service.streams;

    const sequences = new SequenceTracker();
    const kplSequences = new SequenceTracker();
    const put = putAll(
      peers.kinesisClient,
      'mixed',
      payloads.map((data, i) => ({ data, partitionKey: `pk-${i % 1000}` })),
    ).then((results) => results.forEach((r) => sequences.note(r.shardId, r.sequenceNumber)));
    const aggregates = await kplAggregates(userRecords);
    (await putAll(peers.kinesisClient, 'kpl', aggregates)).forEach((r) => kplSequences.note(r.shardId, r.sequenceNumber));
    await put;

    await waitFor(() => mixed!.stats.recordsRead === 20_000 && kpl!.stats.recordsRead === 3_000, 120_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const objects = await readObjects(peers.s3Client, BUCKET, 'mixed/');
    const delivered = objects.flatMap((o) => splitFramed(o.body));
    expect(delivered).toHaveLength(20_000);
    expect(multiset(delivered)).toEqual(multiset(payloads));
    for (const o of objects) {
      expect(o.key).toMatch(/^mixed\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/mixed-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}\.gz$/);
      // The size hint counts bytes before compression; a record never pushes an object past it
      // unless it is alone.
      expect(o.body.length <= MiB || splitFramed(o.body).length === 1).toBe(true);
    }

    expect(await checkpoints(peers.redisClient, 'mixed')).toEqual(Object.fromEntries(sequences.lastByShard));
    expect(await checkpoints(peers.redisClient, 'kpl')).toEqual(Object.fromEntries(kplSequences.lastByShard));

    const kplObjects = await readObjects(peers.s3Client, BUCKET, 'kpl/');
    const lines = kplObjects.flatMap((o) => o.body.toString().split('\n').slice(0, -1));
    expect(lines.sort()).toEqual([...userRecords].sort());

    // A clean restart resumes after the checkpoints: readers run on every shard, nothing comes twice.
    const again = await startService(config, { log: silentLogger });
    await waitFor(() => (again.sources[0] as KinesisSource).activeShards.length === 4, 10_000, 'readers on all 4 shards');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await again.stop()).toBe(true);
    expect(again.streams[0]!.stats.recordsRead).toBe(0);
    expect(again.streams[1]!.stats.recordsRead).toBe(0);
    expect(await readObjects(peers.s3Client, BUCKET, 'mixed/')).toHaveLength(objects.length);
  });

  it('uploads objects larger than the part size in parts, byte-for-byte', async () => {
    await createStream(peers.kinesisClient, 'large', 2);
    const yaml = serviceYaml(peers, [
      { deliveryStreamName: 'large', streamName: 'large', bucket: BUCKET, sizeInMBs: 12, compressionFormat: 'UNCOMPRESSED' },
    ]).replace('compressionFormat: UNCOMPRESSED', 'compressionFormat: UNCOMPRESSED\n      multipartPartSizeInMBs: 5');
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    try {
      // ~14 MiB of incompressible records: one 12 MiB object in three parts, then the rest at shutdown.
      const payloads = Array.from({ length: 140 }, () => framedRecord(randomBytes(100 * 1024)));
      await putAll(peers.kinesisClient, 'large', payloads.map((data, i) => ({ data, partitionKey: `k${i}` })));
      await waitFor(() => service.streams[0]!.stats.objectsDelivered === 1, 60_000, 'the size-triggered object');
      await waitFor(() => service.streams[0]!.stats.recordsRead === 140, 60_000, 'every record read');
      expect(await service.stop()).toBe(true);
      const objects = await readObjects(peers.s3Client, BUCKET, 'large/');
      expect(Math.max(...objects.map((o) => o.body.length))).toBeGreaterThan(10 * MiB);
      expect(multiset(objects.flatMap((o) => splitFramed(o.body)))).toEqual(multiset(payloads));
    } finally {
      await service.stop();
    }
  });

  it('flushes on the interval when the size is not reached: not at 59.999 s, at 60 s', async () => {
    await createStream(peers.kinesisClient, 'slow', 1);
    const clock = new ManualClock(Date.now());
    const config = parseConfig(
      serviceYaml(peers, [{ deliveryStreamName: 'slow', streamName: 'slow', bucket: BUCKET, sizeInMBs: 5, intervalInSeconds: 60 }]),
    );
    let service: RunningService | undefined;
    try {
      service = await startService(config, { log: silentLogger, clock });
      const records = Array.from({ length: 10 }, (_, i) => framedRecord(Buffer.from(`tick ${i}`)));
      await putAll(peers.kinesisClient, 'slow', records.map((data) => ({ data, partitionKey: 'k' })));
      await waitFor(() => service!.streams[0]!.stats.recordsRead === 10, 30_000, '10 records read');

      clock.advance(59_999);
      await new Promise((r) => setTimeout(r, 500));
      expect(await readObjects(peers.s3Client, BUCKET, 'slow/')).toHaveLength(0);

      clock.advance(1);
      await waitFor(() => service!.streams[0]!.stats.objectsDelivered === 1, 10_000, 'the interval flush');
      const [object] = await readObjects(peers.s3Client, BUCKET, 'slow/');
      expect(multiset(splitFramed(object!.body))).toEqual(multiset(records));
      // Delivered and checkpointed while running, not only at shutdown.
      await waitFor(async () => Object.keys(await checkpoints(peers.redisClient, 'slow')).length === 1, 5_000, 'checkpoint');
    } finally {
      await service?.stop();
    }
  });
});

function kplAggregates(userRecords: string[]): Promise<Array<{ data: Uint8Array; partitionKey: string }>> {
  return new Promise((resolve, reject) => {
    const out: Array<{ data: Uint8Array; partitionKey: string }> = [];
    const input = userRecords.map((r, i) => ({ partitionKey: `p${i % 7}`, data: Buffer.from(r) }));
    // Small aggregates (≈ 50 user records each) so one stream gets many of them.
    const groups: (typeof input)[] = [];
    for (let i = 0; i < input.length; i += 50) groups.push(input.slice(i, i + 50));
    let pending = groups.length;
    for (const group of groups) {
      aggregate(
        group,
        (encoded, callback) => {
          out.push({ data: encoded.data, partitionKey: encoded.partitionKey });
          callback();
        },
        () => {
          if (--pending === 0) resolve(out);
        },
        (err) => reject(err),
      );
    }
  });
}
