import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { DeadLetterQueue, dlqConnection } from '../src/dlq.js';
import { createLogger, silentLogger } from '../src/log.js';
import { KinesisSource } from '../src/sources/kinesis/index.js';
import { startService } from '../src/service.js';
import {
  SequenceTracker,
  checkpoints,
  createStream,
  multiset,
  partitionByQuery,
  putAll,
  readObjects,
  serviceYaml,
  suitePeers, waitFor,
  type StreamYamlOptions,
} from './helpers/harness.js';

const BUCKET = 'transformed';
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/transforms/${name}`, import.meta.url));

function lambda(module: string, parameters: Record<string, unknown> = {}): string {
  const all = { module, numberOfRetries: 1, bufferSizeInMBs: 0.2, timeoutSeconds: 1, ...parameters };
  return `
      processingConfiguration:
        enabled: true
        processors:
          - type: Lambda
            parameters: ${JSON.stringify(all)}`;
}

const lines = (bodies: Buffer[]) => bodies.flatMap((b) => b.toString('utf8').split('\n').slice(0, -1));

interface ErrorLine {
  attemptsMade: number;
  arrivalTimestamp: number;
  errorCode: string;
  errorMessage: string;
  attemptEndingTimestamp: number;
  rawData: string;
  lambdaArn: string;
}

describe('transforms: Firehose Lambda handlers run as local modules', () => {
  const peers = suitePeers([BUCKET]);

  async function stream(name: string, options: Partial<StreamYamlOptions>): Promise<StreamYamlOptions> {
    await createStream(peers.kinesisClient, name, 2);
    return { deliveryStreamName: name, streamName: name, bucket: BUCKET, appendNewlineDelimiter: true, compressionFormat: 'UNCOMPRESSED', ...options };
  }

  it("runs AWS's blueprint handler unchanged from its file, async or callback style", async () => {
    const config = parseConfig(
      serviceYaml(peers, [
        await stream('blueprint', { s3Extra: lambda(fixture('blueprint.js')) }),
        await stream('callback', { s3Extra: lambda(fixture('callback-style.js')) }),
      ]),
    );
    const service = await startService(config, { log: silentLogger });
    const input = Array.from({ length: 400 }, (_, i) => `event ${i}: user=ann action=login ${'x'.repeat(i % 500)}`);
    await putAll(peers.kinesisClient, 'blueprint', input.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })));
    await putAll(peers.kinesisClient, 'callback', input.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })));
    await waitFor(() => service.streams.every((s) => s.stats.recordsRead === 400), 30_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const upper = lines((await readObjects(peers.s3Client, BUCKET, 'blueprint/')).map((o) => o.body));
    expect(upper.sort()).toEqual(input.map((t) => t.toUpperCase()).sort());
    const called = lines((await readObjects(peers.s3Client, BUCKET, 'callback/')).map((o) => o.body));
    expect(called.sort()).toEqual(input.map((t) => `cb:${t}`).sort());
  });

  it('accounts for every record when handlers fail records, time out, break the contract or kill their thread', async () => {
    const cases = [
      { name: 'one-in-ten', module: 'fail-one-in-ten.mjs', code: 'Lambda.ProcessingFailed', attempts: 1 },
      { name: 'timeout', module: 'times-out.js', code: 'Lambda.FunctionTimedOut', attempts: 2 },
      { name: 'missing-id', module: 'missing-record-id.mjs', code: 'Lambda.MissingRecordId', attempts: 2 },
      { name: 'kills', module: 'kills-worker.mjs', code: 'Lambda.FunctionError', attempts: 2 },
    ];
    const streams = [];
    for (const c of cases) streams.push(await stream(c.name, { s3Extra: lambda(fixture(c.module)) }));
    const service = await startService(parseConfig(serviceYaml(peers, streams)), { log: silentLogger });
    const input = Array.from({ length: 300 }, (_, n) => JSON.stringify({ n, pad: 'p'.repeat(n % 200) }));
    const sequences = new Map<string, SequenceTracker>();
    for (const c of cases) {
      const tracker = new SequenceTracker();
      sequences.set(c.name, tracker);
      (await putAll(peers.kinesisClient, c.name, input.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })))).forEach((r) =>
        tracker.note(r.shardId, r.sequenceNumber),
      );
    }
    await waitFor(() => service.streams.every((s) => s.stats.recordsRead === 300), 30_000, 'every record read');
    expect(await service.stop()).toBe(true);

    for (const c of cases) {
      const delivered = lines((await readObjects(peers.s3Client, BUCKET, `${c.name}/`)).map((o) => o.body));
      const errorObjects = await readObjects(peers.s3Client, BUCKET, `${c.name}-errors/`);
      for (const o of errorObjects) expect(o.key).toMatch(new RegExp(`^${c.name}-errors/processing-failed/\\d{4}/\\d{2}/\\d{2}/\\d{2}/${c.name}-1-`));
      const errors = lines(errorObjects.map((o) => o.body)).map((l) => JSON.parse(l) as ErrorLine);
      const failedBytes = errors.map((e) => Buffer.from(e.rawData, 'base64'));
      // Every record ends once: delivered, or a processing-failed line holding its exact bytes.
      expect(multiset([...delivered.map((l) => Buffer.from(l)), ...failedBytes])).toEqual(multiset(input.map((t) => Buffer.from(t))));
      expect(new Set(errors.map((e) => e.errorCode))).toEqual(new Set([c.code]));
      for (const e of errors) {
        expect(e.attemptsMade).toBe(c.attempts);
        expect(e.lambdaArn).toBe(fixture(c.module));
        expect(e.attemptEndingTimestamp).toBeGreaterThanOrEqual(e.arrivalTimestamp);
      }
      if (c.name === 'one-in-ten') expect(errors).toHaveLength(30);
      else expect(errors).toHaveLength(300);
      // Failed records reached an end too: the checkpoints moved past them.
      expect(await checkpoints(peers.redisClient, c.name)).toEqual(Object.fromEntries(sequences.get(c.name)!.lastByShard));
    }
    const stats = service.streams.map((s) => s.transform!.stats);
    expect(stats[1]!.failedInvocations).toBeGreaterThanOrEqual(2);
  });

  it('partitions 10,000 records over 20 customers into exactly 20 prefixes; records without the key go to partitioning-failed', async () => {
    const config = parseConfig(
      serviceYaml(peers, [
        await stream('customers', {
          prefix: 'customers/customer=!{partitionKeyFromQuery:customer}/',
          errorOutputPrefix: 'customers-errors/!{firehose:error-output-type}/',
          sizeInMBs: 64,
          s3Extra: partitionByQuery('{customer: .customer_id}'),
        }),
        await stream('lambda-keys', {
          prefix: 'by-lambda/!{partitionKeyFromLambda:customer}/',
          errorOutputPrefix: 'by-lambda-errors/!{firehose:error-output-type}/',
          sizeInMBs: 64,
          s3Extra: `
      dynamicPartitioningConfiguration: { enabled: true }${lambda(fixture('customer-keys.mjs'))}`,
        }),
      ]),
    );
    const service = await startService(config, { log: process.env.DEBUG_E2E ? createLogger('debug') : silentLogger });
    const records = Array.from({ length: 10_000 }, (_, i) => JSON.stringify({ customer_id: `c${String(i % 20).padStart(2, '0')}`, i }));
    const malformed = Array.from({ length: 100 }, (_, i) => (i % 2 ? `not json ${i}` : JSON.stringify({ i, no_customer: true })));
    const all = [...records, ...malformed];
    await putAll(peers.kinesisClient, 'customers', all.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })));
    const small = Array.from({ length: 500 }, (_, i) => JSON.stringify({ customer: `d${i % 5}`, i }));
    await putAll(peers.kinesisClient, 'lambda-keys', small.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead === all.length && service.streams[1]!.stats.recordsRead === 500, 60_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const objects = await readObjects(peers.s3Client, BUCKET, 'customers/');
    const byPrefix = new Map<string, string[]>();
    for (const o of objects) {
      const prefix = o.key.slice(0, o.key.lastIndexOf('/') + 1);
      byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), ...lines([o.body])]);
    }
    expect(byPrefix.size).toBe(20);
    for (const [prefix, contents] of byPrefix) {
      const customer = /^customers\/customer=(c\d\d)\/$/.exec(prefix)![1]!;
      expect(contents.sort()).toEqual(records.filter((r) => JSON.parse(r).customer_id === customer).sort());
    }
    const failed = lines((await readObjects(peers.s3Client, BUCKET, 'customers-errors/partitioning-failed/')).map((o) => o.body));
    expect(failed.map((l) => Buffer.from(JSON.parse(l).rawData, 'base64').toString()).sort()).toEqual([...malformed].sort());

    const lambdaObjects = await readObjects(peers.s3Client, BUCKET, 'by-lambda/');
    expect(new Set(lambdaObjects.map((o) => o.key.split('/')[1]))).toEqual(new Set(['d0', 'd1', 'd2', 'd3', 'd4']));
    for (const o of lambdaObjects) {
      const customer = o.key.split('/')[1];
      expect(lines([o.body]).every((l) => JSON.parse(l).customer === customer)).toBe(true);
    }
    expect(lines(lambdaObjects.map((o) => o.body))).toHaveLength(500);
  });

  it('a slow CPU-bound handler does not hold up an untransformed stream in the same process', async () => {
    const config = parseConfig(
      serviceYaml(peers, [
        await stream('busy', { s3Extra: lambda(fixture('slow-cpu.mjs'), { concurrency: 1, timeoutSeconds: 30, environment: { BUSY_MS: '1500' } }) }),
        await stream('quiet', {}),
      ]),
    );
    const service = await startService(config, { log: silentLogger });
    const [busy, quiet] = service.streams;
    try {
      // ~1 MB for the busy stream: about five 1.5 s invocations on its worker thread.
      const heavy = Array.from({ length: 1_000 }, (_, i) => ({ data: Buffer.from(JSON.stringify({ i, pad: 'z'.repeat(1_000) })), partitionKey: `b${i}` }));
      await putAll(peers.kinesisClient, 'busy', heavy);
      await waitFor(() => busy!.transform!.stats.invocations >= 1, 30_000, 'the slow handler to start');
      (service.sources[1] as KinesisSource).resetIteratorAge();
      for (let i = 0; i < 40; i++) {
        await putAll(peers.kinesisClient, 'quiet', [{ data: Buffer.from(`tick ${i}`), partitionKey: `q${i}` }]);
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor(() => quiet!.stats.recordsRead === 40, 10_000, 'the quiet stream to keep up');
      // Reads every 200 ms when idle; a handler on the main event loop would add its 1.5 s.
      console.log(`quiet stream: max iterator age ${(service.sources[1] as KinesisSource).maxIteratorAgeMs} ms while the handler ran`);
      expect((service.sources[1] as KinesisSource).maxIteratorAgeMs).toBeLessThan(1_000);
      expect(busy!.transform!.stats.invocations).toBeGreaterThanOrEqual(2); // it really was busy meanwhile
    } finally {
      await service.stop();
    }
  });

  it('with includeProcessingFailures, records a handler fails are parked in the DLQ instead of the error output', async () => {
    const yaml = serviceYaml(peers, [await stream('parked-processing', { s3Extra: lambda(fixture('fail-one-in-ten.mjs')) })]).replace(
      'runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30, leaseDurationInSeconds: 2 }',
      'runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30, leaseDurationInSeconds: 2, deadLetterQueue: { enabled: true, includeProcessingFailures: true } }',
    );
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    const input = Array.from({ length: 300 }, (_, n) => JSON.stringify({ n }));
    const sequences = new SequenceTracker();
    (await putAll(peers.kinesisClient, 'parked-processing', input.map((t, i) => ({ data: Buffer.from(t), partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 300, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const redis = dlqConnection({ url: peers.redis.url });
    const queue = new DeadLetterQueue(redis, 'parked-processing', 1 << 30);
    const letters = await queue.list();
    await queue.close();
    redis.disconnect();
    expect(letters.map((l) => Buffer.from(l.letter.data, 'base64').toString()).sort()).toEqual(input.filter((t) => JSON.parse(t).n % 10 === 0).sort());
    expect(new Set(letters.map((l) => l.letter.errorCode))).toEqual(new Set(['Lambda.ProcessingFailed']));
    expect(await readObjects(peers.s3Client, BUCKET, 'parked-processing-errors/')).toHaveLength(0);
    expect(lines((await readObjects(peers.s3Client, BUCKET, 'parked-processing/')).map((o) => o.body))).toHaveLength(270);
    expect(await checkpoints(peers.redisClient, 'parked-processing')).toEqual(Object.fromEntries(sequences.lastByShard));
  });
});
