import { describe, expect, it } from 'vitest';
import { S3Destination } from '../destinations/s3/index.js';
import { s3DestinationSchema } from '../destinations/s3/config.js';
import { redisKeys } from '../src/checkpoints.js';
import { parseConfig } from '../src/config.js';
import { freePort } from '../src/dev/peers.js';
import { silentLogger } from '../src/log.js';
import { partitionKeyProblem } from '../src/pipeline/router.js';
import { startService } from '../src/service.js';
import { sequenceOrder } from '../src/sources/kinesis/source.js';
import { startBulkServer } from './helpers/bulk-server.js';
import { SequenceTracker, checkpoints, partitionByQuery, createStream, multiset, putAll, readObjects, serviceYaml, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'classes';

/** Transient errors are retried until they pass; permanent ones end their record at once; nothing loops. */
describe('error classes', () => {
  const peers = suitePeers([BUCKET]);

  it('an OpenSearch cluster down for 10 s, then back: every document is indexed, none goes to the backup', async () => {
    const name = 'osdown';
    const port = await freePort();
    await createStream(peers.kinesisClient, name, 2);
    const service = await startService(
      parseConfig(`
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30 }
deliveryStreams:
  - deliveryStreamName: ${name}
    kinesisStreamSource: { streamName: ${name}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "http://127.0.0.1:${port}"
      indexName: logs
      indexRotationPeriod: NoRotation
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 120 }
      s3Configuration: { bucket: ${BUCKET}, prefix: "${name}/", errorOutputPrefix: "${name}-failed/", endpoint: "${peers.s3.endpoint}" }
`),
      { log: silentLogger },
    );
    const documents = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i }));
    await putAll(peers.kinesisClient, name, documents.map((d, i) => ({ data: Buffer.from(d), partitionKey: `k${i}` })));
    const stream = service.streams[0]!;
    await waitFor(() => stream.stats.recordsRead === 300, 30_000, 'every record read');
    const downSince = Date.now();
    stream.flush(); // deliver now, into the outage
    await waitFor(() => stream.stats.deliveryAttemptsFailed >= 3, 20_000, 'refused connections');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_000 - (Date.now() - downSince))));
    const cluster = await startBulkServer(() => 201, port);
    await waitFor(() => stream.stats.recordsDelivered === 300, 60_000, 'every document indexed once the cluster is back');
    expect(await service.stop()).toBe(true);
    expect(cluster.indexed.size).toBe(300);
    expect([...cluster.indexed.values()].map((v) => v.source).sort()).toEqual([...documents].sort());
    expect(stream.stats.recordsToErrorOutput).toBe(0);
    expect(await readObjects(peers.s3Client, BUCKET, `${name}-failed/`)).toHaveLength(0);
    await cluster.stop();
  });

  it('a 2,000-character partition key, or one climbing out of the prefix: that record ends partitioning-failed, the rest of its batch is delivered, the checkpoint reaches the last record', async () => {
    const name = 'longkey';
    await createStream(peers.kinesisClient, name, 2);
    const config = parseConfig(
      serviceYaml(peers, [
        {
          deliveryStreamName: name,
          streamName: name,
          bucket: BUCKET,
          prefix: `${name}/customer=!{partitionKeyFromQuery:customer}/`,
          errorOutputPrefix: `${name}-errors/!{firehose:error-output-type}/`,
          sizeInMBs: 64,
          compressionFormat: 'UNCOMPRESSED',
          appendNewlineDelimiter: true,
          s3Extra: partitionByQuery('{customer: .customer}'),
        },
      ]),
    );
    const service = await startService(config, { log: silentLogger });
    const good = Array.from({ length: 400 }, (_, i) => JSON.stringify({ customer: `c${i % 4}`, i }));
    const poison = [JSON.stringify({ customer: 'x'.repeat(2_000), i: 'long' }), JSON.stringify({ customer: '../../etc', i: 'climb' })];
    const all = [...good.slice(0, 200), poison[0]!, ...good.slice(200), poison[1]!];
    const sequences = new SequenceTracker();
    (await putAll(peers.kinesisClient, name, all.map((d, i) => ({ data: Buffer.from(d), partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    await waitFor(() => service.streams[0]!.stats.recordsRead === all.length, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const delivered = await readObjects(peers.s3Client, BUCKET, `${name}/`);
    expect(delivered.every((o) => /^longkey\/customer=c[0-3]\//.test(o.key))).toBe(true);
    expect(multiset(delivered.flatMap((o) => o.body.toString().split('\n').slice(0, -1).map((l) => Buffer.from(l))))).toEqual(multiset(good.map((g) => Buffer.from(g))));
    const failed = (await readObjects(peers.s3Client, BUCKET, `${name}-errors/partitioning-failed/`))
      .flatMap((o) => o.body.toString().split('\n').slice(0, -1))
      .map((l) => JSON.parse(l) as { rawData: string; errorCode: string; errorMessage: string });
    expect(failed.map((f) => Buffer.from(f.rawData, 'base64').toString()).sort()).toEqual([...poison].sort());
    expect(failed.every((f) => f.errorCode === 'DynamicPartitioning.InvalidPartitionKey')).toBe(true);
    expect(failed.map((f) => f.errorMessage).sort()).toEqual([
      'partition key partitionKeyFromQuery:customer has a "." or ".." path segment: "../../etc"',
      'partition key partitionKeyFromQuery:customer is 2000 bytes long; at most 512',
    ]);
    expect(await checkpoints(peers.redisClient, name)).toEqual(Object.fromEntries(sequences.lastByShard));
  });

  it('checks partition keys before they reach a key: control characters, dot segments, and keys S3 could not hold', () => {
    expect(partitionKeyProblem('k', 'a/b-c_d.e')).toBeUndefined();
    expect(partitionKeyProblem('k', 'tab\there')).toBe('partition key k holds a control character');
    expect(partitionKeyProblem('k', 'a/./b')).toContain('path segment');
    expect(partitionKeyProblem('k', '')).toBe('partition key k is empty');
    const s3 = new S3Destination(s3DestinationSchema.parse({ bucket: 'abc', prefix: 'p/!{partitionKeyFromQuery:a}/!{partitionKeyFromQuery:b}/', errorOutputPrefix: 'e/!{firehose:error-output-type}/', dynamicPartitioningConfiguration: { enabled: true }, processingConfiguration: { enabled: true, processors: [{ type: 'MetadataExtraction', parameters: { metadataExtractionQuery: '{a: .a, b: .b}', jsonParsingEngine: 'JQ-1.6' } }] } }), {
      deliveryStreamName: 'keys',
      deliveryStreamArn: 'arn',
      log: silentLogger,
    });
    expect(s3.checkPartition({ 'partitionKeyFromQuery:a': 'x'.repeat(400), 'partitionKeyFromQuery:b': 'y'.repeat(400) })).toBeUndefined();
    expect(s3.checkPartition({ 'partitionKeyFromQuery:a': 'x'.repeat(500), 'partitionKeyFromQuery:b': 'y'.repeat(500) })).toMatch(/^the partition's S3 key would be \d+ bytes long; S3 allows 1024$/);
  });

  it('a renamed streamName reads the new stream from its starting position, with its records delivered; the old stream\'s checkpoints stay its own', async () => {
    await createStream(peers.kinesisClient, 'renamed-a', 2);
    await createStream(peers.kinesisClient, 'renamed-b', 2);
    const yaml = (streamName: string) => serviceYaml(peers, [{ deliveryStreamName: 'renamed', streamName, bucket: BUCKET, prefix: `renamed/${streamName}/`, compressionFormat: 'UNCOMPRESSED' }]);
    const first = Array.from({ length: 100 }, (_, i) => Buffer.from(`a ${i}\n`));
    const second = Array.from({ length: 100 }, (_, i) => Buffer.from(`b ${i}\n`));
    const seqA = new SequenceTracker();
    const seqB = new SequenceTracker();
    (await putAll(peers.kinesisClient, 'renamed-a', first.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => seqA.note(r.shardId, r.sequenceNumber));
    const a = await startService(parseConfig(yaml('renamed-a')), { log: silentLogger });
    await waitFor(() => a.streams[0]!.stats.recordsRead === 100, 30_000, 'stream a read');
    expect(await a.stop()).toBe(true);

    (await putAll(peers.kinesisClient, 'renamed-b', second.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => seqB.note(r.shardId, r.sequenceNumber));
    const b = await startService(parseConfig(yaml('renamed-b')), { log: silentLogger });
    await waitFor(() => b.streams[0]!.stats.recordsRead === 100, 30_000, 'stream b read');
    expect(await b.stop()).toBe(true);
    const delivered = (await readObjects(peers.s3Client, BUCKET, 'renamed/renamed-b/')).flatMap((o) => o.body.toString().split('\n').slice(0, -1).map((l) => Buffer.from(`${l}\n`)));
    expect(multiset(delivered)).toEqual(multiset(second));
    const stored = {
      a: await peers.redisClient.hgetall(redisKeys.checkpoints('renamed', 'kinesis/us-east-1/renamed-a')),
      b: await peers.redisClient.hgetall(redisKeys.checkpoints('renamed', 'kinesis/us-east-1/renamed-b')),
    };
    expect(stored).toEqual({ a: Object.fromEntries(seqA.lastByShard), b: Object.fromEntries(seqB.lastByShard) });
  });

  it('checkpoints written before they were keyed by source are adopted once: nothing already checkpointed is read again', async () => {
    const name = 'legacy';
    await createStream(peers.kinesisClient, name, 2);
    const old = new SequenceTracker();
    (await putAll(peers.kinesisClient, name, Array.from({ length: 50 }, (_, i) => ({ data: Buffer.from(`old ${i}\n`), partitionKey: `k${i}` })))).forEach((r) => old.note(r.shardId, r.sequenceNumber));
    await peers.redisClient.hset(redisKeys.legacyCheckpoints(name), Object.fromEntries(old.lastByShard));
    const fresh = Array.from({ length: 50 }, (_, i) => Buffer.from(`new ${i}\n`));
    await putAll(peers.kinesisClient, name, fresh.map((data, i) => ({ data, partitionKey: `k${i}` })));
    const service = await startService(parseConfig(serviceYaml(peers, [{ deliveryStreamName: name, streamName: name, bucket: BUCKET, compressionFormat: 'UNCOMPRESSED' }])), { log: silentLogger });
    await waitFor(() => service.streams[0]!.stats.recordsRead === 50, 30_000, 'the new records read');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await service.stop()).toBe(true);
    expect(service.streams[0]!.stats.recordsRead).toBe(50);
    const delivered = (await readObjects(peers.s3Client, BUCKET, `${name}/`)).flatMap((o) => o.body.toString().split('\n').slice(0, -1).map((l) => Buffer.from(`${l}\n`)));
    expect(multiset(delivered)).toEqual(multiset(fresh));
    expect(await peers.redisClient.exists(redisKeys.legacyCheckpoints(name))).toBe(0);
  });

  it('Kinesis positions sort by their own order in the checkpoint script, not by text', () => {
    const keys = ['9', '10', '49590338271490256608559692538361571095921575989136588898', '100'].map((s) => sequenceOrder.sortKey(s));
    expect([...keys].sort()).toEqual([keys[0], keys[1], keys[3], keys[2]]);
  });
});
