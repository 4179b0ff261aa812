import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { DeadLetterQueue, dlqConnection, type DeadLetterEntry } from '../src/dlq.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { startBulkServer } from './helpers/bulk-server.js';
import { firehose } from './helpers/cli.js';
import { SequenceTracker, checkpoints, createStream, multiset, putAll, readObjects, startPeers, waitFor, type Peers } from './helpers/harness.js';
import { startReceiver } from './helpers/http-receiver.js';

const BUCKET = 'redrive';
const failFlagged = fileURLToPath(new URL('./fixtures/transforms/fail-flagged.mjs', import.meta.url));

/**
 * A redrive is a source: parked records go back through their delivery stream — transform,
 * partitioning, conversion, destination, retries, acknowledgements — for each destination.
 */
describe('redrive through the pipeline', () => {
  let peers: Peers;
  let dir: string;
  beforeAll(async () => {
    peers = await startPeers([BUCKET], { redisAppendOnly: true });
    dir = await mkdtemp(join(tmpdir(), 'firehose-redrive-'));
  });
  afterAll(async () => {
    await peers?.stop();
  });

  const header = (dlq: string) => `
redis: { url: "${peers.redis.url}" }
runtime:
  checkpointIntervalInMillis: 200
  shutdownTimeoutInSeconds: 30
  deadLetterQueue: ${dlq}
deliveryStreams:`;
  const source = (name: string) => `kinesisStreamSource: { streamName: ${name}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }`;
  const backup = (name: string, extra = '') => `s3Configuration: { bucket: ${BUCKET}, prefix: "${name}/", errorOutputPrefix: "${name}-failed/", endpoint: "${peers.s3.endpoint}"${extra} }`;

  async function letters(name: string): Promise<DeadLetterEntry[]> {
    const redis = dlqConnection({ url: peers.redis.url });
    const queue = new DeadLetterQueue(redis, name, 1 << 30);
    try {
      return await queue.list();
    } finally {
      await queue.close();
      redis.disconnect();
    }
  }

  async function configFile(name: string, text: string): Promise<string> {
    const path = join(dir, `${name}.yaml`);
    await writeFile(path, text);
    return path;
  }

  it('OpenSearch: refused documents are parked; after the mapping is fixed a redrive indexes each once under its stable id; one that fails again stays parked with attempts + 1', async () => {
    const name = 'osredrive';
    const documents = Array.from({ length: 600 }, (_, i) => JSON.stringify({ i, kind: i % 20 === 3 ? 'bad' : 'ok', stubborn: i === 43 || i === 143 }));
    let mappingFixed = false;
    const cluster = await startBulkServer((doc) => (doc.kind === 'bad' && (!mappingFixed || doc.stubborn) ? 400 : 201));
    await createStream(peers.kinesisClient, name, 2);
    const yaml = `${header('{ enabled: true }')}
  - deliveryStreamName: ${name}
    ${source(name)}
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "${cluster.url}"
      indexName: logs
      indexRotationPeriod: NoRotation
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 30 }
      ${backup(name)}
`;
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    await putAll(peers.kinesisClient, name, documents.map((d, i) => ({ data: Buffer.from(d), partitionKey: `k${i}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 600, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);
    const bad = documents.filter((d) => JSON.parse(d).kind === 'bad');
    const parked = await letters(name);
    expect(parked.map((e) => Buffer.from(e.letter.data, 'base64').toString()).sort()).toEqual([...bad].sort());
    const idsAtFailure = new Map(
      (await readObjects(peers.s3Client, BUCKET, `${name}-failed/`))
        .flatMap((o) => o.body.toString().split('\n').slice(0, -1))
        .map((l) => JSON.parse(l) as { rawData: string; esDocumentId: string })
        .map((l) => [Buffer.from(l.rawData, 'base64').toString(), l.esDocumentId]),
    );
    expect(idsAtFailure.size).toBe(bad.length);
    const attemptsBefore = new Map(parked.map((e) => [e.id, e.letter.attemptsMade]));

    mappingFixed = true;
    const run = firehose(['dlq', 'redrive', '--config', await configFile(name, yaml), '--stream', name]);
    const exited = await run.exited;
    expect(run.stdout()).toContain(`${name}: redrove ${bad.length - 2} of ${bad.length} dead letter(s); 2 failed again and stay parked`);
    expect(exited.code).toBe(1);

    // Every document once, the redriven ones under the id they had when they failed.
    const good = documents.filter((d) => !JSON.parse(d).stubborn);
    expect(cluster.indexed.size).toBe(good.length);
    expect([...cluster.indexed.values()].every((v) => v.count === 1)).toBe(true);
    const bySource = new Map([...cluster.indexed].map(([key, v]) => [v.source, key.split('/')[1]]));
    for (const d of bad.filter((d) => !JSON.parse(d).stubborn)) expect(bySource.get(d)).toBe(idsAtFailure.get(d));
    // The stubborn two stay, each with one more attempt.
    const left = await letters(name);
    expect(left.map((e) => JSON.parse(Buffer.from(e.letter.data, 'base64').toString()).i).sort()).toEqual([143, 43].sort());
    for (const e of left) expect(e.letter.attemptsMade).toBe(attemptsBefore.get(e.id)! + 1);
    await cluster.stop();
  });

  it('processing failures into a partitioned Parquet stream: parked; with the transform fixed, a redrive transforms, partitions and converts them (read back by DuckDB); the error output is named for the JSON lines it holds', async () => {
    const name = 'pqredrive';
    await createStream(peers.kinesisClient, name, 2);
    const yaml = (accept: boolean) => `${header('{ enabled: true, includeProcessingFailures: true }')}
  - deliveryStreamName: ${name}
    ${source(name)}
    s3Destination:
      bucket: ${BUCKET}
      prefix: "${name}/customer=!{partitionKeyFromQuery:customer}/"
      errorOutputPrefix: "${name}-errors/!{firehose:error-output-type}/"
      endpoint: "${peers.s3.endpoint}"
      bufferingHints: { sizeInMBs: 64, intervalInSeconds: 60 }
      dynamicPartitioningConfiguration: { enabled: true }
      processingConfiguration:
        enabled: true
        processors:
          - type: Lambda
            parameters: { module: "${failFlagged}", bufferIntervalInSeconds: 60, environment: { ACCEPT_FLAGGED: "${accept ? '1' : '0'}" } }
          - type: MetadataExtraction
            parameters: { metadataExtractionQuery: "{customer: .customer}", jsonParsingEngine: JQ-1.6 }
      dataFormatConversionConfiguration:
        enabled: true
        outputFormatConfiguration: { serializer: { parquetSerDe: { compression: SNAPPY } } }
        schema:
          - { name: n, type: bigint, nullable: false }
          - { name: customer, type: string }
          - { name: checked, type: boolean }
`;
    const records = Array.from({ length: 900 }, (_, n) => ({ n, customer: `c${n % 3}`, flagged: n % 9 === 4 }));
    const notConvertible = JSON.stringify({ n: 'not a number', customer: 'c0' });
    const service = await startService(parseConfig(yaml(false)), { log: silentLogger });
    await putAll(peers.kinesisClient, name, [...records.map((r) => JSON.stringify(r)), notConvertible].map((d, i) => ({ data: Buffer.from(d), partitionKey: `k${i}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 901, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);
    const flagged = records.filter((r) => r.flagged);
    expect((await letters(name)).map((e) => JSON.parse(Buffer.from(e.letter.data, 'base64').toString()).n).sort((a, b) => a - b)).toEqual(flagged.map((r) => r.n));

    // The conversion failure is a JSON line in an object named for it: not ".parquet".
    const errorObjects = await readObjects(peers.s3Client, BUCKET, `${name}-errors/format-conversion-failed/`);
    expect(errorObjects).toHaveLength(1);
    expect(errorObjects[0]!.key).not.toMatch(/\.parquet$/);
    const line = JSON.parse(errorObjects[0]!.body.toString().trim()) as { rawData: string; errorCode: string };
    // Conversion runs after the transform: the line holds the record as the transform returned it.
    expect(JSON.parse(Buffer.from(line.rawData, 'base64').toString())).toEqual({ ...JSON.parse(notConvertible), checked: true });
    expect(line.errorCode).toBe('DataFormatConversion.MalformedData');

    const run = firehose(['dlq', 'redrive', '--config', await configFile(name, yaml(true)), '--stream', name]);
    expect((await run.exited).code).toBe(0);
    expect(run.stdout()).toContain(`${name}: redrove ${flagged.length} of ${flagged.length} dead letter(s)`);
    expect(await letters(name)).toHaveLength(0);

    // DuckDB reads every record, each in its customer's partition, the redriven ones transformed too.
    const objects = (await readObjects(peers.s3Client, BUCKET, `${name}/`)).filter((o) => o.key.endsWith('.parquet'));
    const files: string[] = [];
    for (const [i, o] of objects.entries()) {
      const path = join(dir, `${name}-${i}-${o.key.split('/')[1]}.parquet`);
      await writeFile(path, o.body);
      files.push(path);
    }
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const rows = (await connection.runAndReadAll(`SELECT n, customer, checked, filename FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], filename = true) ORDER BY n`)).getRowObjectsJson() as Array<{ n: string; customer: string; checked: boolean; filename: string }>;
    connection.closeSync();
    expect(rows.map((r) => Number(r.n))).toEqual(records.map((r) => r.n));
    for (const row of rows) {
      expect(row.checked).toBe(true);
      expect(row.filename).toMatch(new RegExp(`-customer=${row.customer}\\.parquet$`));
      expect(row.customer).toBe(`c${Number(row.n) % 3}`);
    }
  });

  it('25,000 parked entries: `dlq list` counts them all; of three redrives started at once one runs, the others are refused, and each record is delivered once', async () => {
    const name = 'manyparked';
    let accepting = false;
    const receiver = await startReceiver({
      sourceArn: `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`,
      reply: () => (accepting ? { status: 200 } : { status: 413, body: { errorMessage: 'too large' } }),
    });
    await createStream(peers.kinesisClient, name, 4);
    const yaml = `${header('{ enabled: true, maxSizeInMBs: 64 }')}
  - deliveryStreamName: ${name}
    ${source(name)}
    httpEndpointDestination:
      endpointConfiguration: { url: "${receiver.url}" }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 0 }
      ${backup(name)}
`;
    const input = Array.from({ length: 25_000 }, (_, i) => Buffer.from(`record ${i} ${'x'.repeat(i % 97)}`));
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    await putAll(peers.kinesisClient, name, input.map((data, i) => ({ data, partitionKey: `k${i}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead === input.length, 60_000, 'every record read');
    expect(await service.stop()).toBe(true);
    expect(service.streams[0]!.stats.recordsToDeadLetterQueue).toBe(input.length);

    const configPath = await configFile(name, yaml);
    const list = firehose(['dlq', 'list', '--config', configPath, '--stream', name]);
    expect((await list.exited).code).toBe(0);
    expect(list.stdout()).toContain(`${name}: 25000 dead letter(s)`);
    expect(list.stdout().split('\n').filter((l) => l.startsWith('shardId-'))).toHaveLength(25_000);

    accepting = true;
    const runs = [0, 1, 2].map(() => firehose(['dlq', 'redrive', '--config', configPath, '--stream', name]));
    const codes = (await Promise.all(runs.map((r) => r.exited))).map((e) => e.code);
    expect(codes.filter((c) => c === 0)).toHaveLength(1);
    expect(codes.filter((c) => c === 3)).toHaveLength(2);
    const winner = runs[codes.indexOf(0)]!;
    expect(winner.stdout()).toContain(`${name}: redrove 25000 of 25000 dead letter(s)`);
    // Not a terminal: progress comes as plain lines on stderr.
    expect(winner.stderr()).toMatch(/redrive manyparked: [\d,]+\/25,000 entries/);
    for (const loser of runs.filter((r) => r !== winner)) expect(loser.stdout()).toContain('a redrive of manyparked is already running');
    expect(multiset(receiver.delivered())).toEqual(multiset(input));
    expect(receiver.violations).toEqual([]);
    expect(await letters(name)).toHaveLength(0);
    await receiver.stop();
  });

  it('a GZIP backup bucket holds objects that are gzip, named .gz', async () => {
    const name = 'gzbackup';
    const receiver = await startReceiver({ sourceArn: `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`, reply: () => ({ status: 413 }) });
    await createStream(peers.kinesisClient, name, 1);
    const service = await startService(
      parseConfig(`${header('{ enabled: false }')}
  - deliveryStreamName: ${name}
    ${source(name)}
    httpEndpointDestination:
      endpointConfiguration: { url: "${receiver.url}" }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      ${backup(name, ', compressionFormat: GZIP')}
`),
      { log: silentLogger },
    );
    const sequences = new SequenceTracker();
    const input = Array.from({ length: 50 }, (_, i) => Buffer.from(`gz ${i}`));
    (await putAll(peers.kinesisClient, name, input.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 50, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);
    const objects = await readObjects(peers.s3Client, BUCKET, `${name}-failed/`);
    expect(objects.length).toBeGreaterThan(0);
    const rawData: Buffer[] = [];
    for (const o of objects) {
      expect(o.key).toMatch(/\.gz$/);
      const stored = Buffer.from(await (await peers.s3Client.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.key }))).Body!.transformToByteArray());
      expect(stored.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      for (const l of gunzipSync(stored).toString().split('\n').slice(0, -1)) rawData.push(Buffer.from((JSON.parse(l) as { rawData: string }).rawData, 'base64'));
    }
    expect(multiset(rawData)).toEqual(multiset(input));
    expect(await checkpoints(peers.redisClient, name)).toEqual(Object.fromEntries(sequences.lastByShard));
    await receiver.stop();
  });

  it('a DLQ bound smaller than one batch parks what fits and keeps the rest waiting; a letter larger than the whole bound is refused for the error output', async () => {
    const redis = dlqConnection({ url: peers.redis.url });
    const queue = new DeadLetterQueue(redis, 'tinybound', 1_000);
    const letter = (n: number, size: number) => ({
      deliveryStreamName: 'tinybound', destination: 'httpEndpointDestination', errorOutputType: 'http-endpoint-failed' as const,
      errorCode: 'HttpEndpoint.PayloadTooLarge', errorMessage: '413', attemptsMade: 1, lastAttemptAt: n, arrivalTimestamp: n,
      shardId: 'shardId-000000000000', sequenceNumber: String(1000 + n), subSequenceNumber: 0, partitionKey: 'k', data: Buffer.alloc(size, n).toString('base64'),
    });
    try {
      const letters = Array.from({ length: 10 }, (_, n) => letter(n, 150)); // 200 bytes of base64 each
      const first = await queue.park([...letters, letter(99, 900)]);
      expect(first.parked).toBe(5);
      expect(first.rest).toHaveLength(5);
      expect(first.tooLarge.map((l) => l.sequenceNumber)).toEqual(['1099']);
      expect(await queue.size()).toEqual({ entries: 5, bytes: 1_000 });
      await queue.remove(await queue.list());
      const second = await queue.park(first.rest);
      expect(second).toMatchObject({ parked: 5, rest: [] });
      // Parked again: updated in place, attempts added up, no more room taken.
      const again = await queue.park([{ ...first.rest[0]!, attemptsMade: 2 }]);
      expect(again).toMatchObject({ parked: 1, rest: [] });
      expect(await queue.size()).toEqual({ entries: 5, bytes: 1_000 });
      expect((await queue.list({ id: `shardId-000000000000:${first.rest[0]!.sequenceNumber}:0` }))[0]!.letter.attemptsMade).toBe(3);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
