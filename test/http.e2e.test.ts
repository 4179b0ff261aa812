import { mkdtemp, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { redisKeys } from '../src/checkpoints.js';
import { DeadLetterQueue, dlqConnection } from '../src/dlq.js';
import { startReceiver } from './helpers/http-receiver.js';
import { SequenceTracker, checkpoints, createStream, multiset, putAll, readObjects, suitePeers, waitFor, type Peers } from './helpers/harness.js';

/** promtool (Debian's prometheus package) lints the exposition where it is installed; .ci/run installs it. */
const hasPromtool = () => spawnSync('promtool', ['--version']).status === 0;

const BUCKET = 'http-backup';
const arn = (name: string) => `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`;

function yaml(peers: Peers, streams: Array<{ name: string; url: string; retrySeconds?: number; gzip?: boolean }>, dlq = false): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime:
  checkpointIntervalInMillis: 200
  shutdownTimeoutInSeconds: 30
  deadLetterQueue: { enabled: ${dlq}, maxSizeInMBs: 16 }
  admin: { enabled: ${dlq}, port: 0 }
deliveryStreams:
${streams
  .map(
    (s) => `
  - deliveryStreamName: ${s.name}
    kinesisStreamSource: { streamName: ${s.name}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200, shardDiscoveryIntervalInSeconds: 1 }
    httpEndpointDestination:
      endpointConfiguration: { url: "${s.url}", name: receiver, accessKey: "secret-key-${s.name}" }
      requestConfiguration:
        contentEncoding: ${s.gzip ? 'GZIP' : 'NONE'}
        commonAttributes: [{ attributeName: env, attributeValue: test }, { attributeName: stream, attributeValue: ${s.name} }]
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: ${s.retrySeconds ?? 300} }
      s3BackupMode: FailedDataOnly
      s3Configuration: { bucket: ${BUCKET}, prefix: "${s.name}/", errorOutputPrefix: "${s.name}-failed/", endpoint: "${peers.s3.endpoint}" }`,
  )
  .join('')}`;
}

const payloads = (tag: string, n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${i} ${'r'.repeat(500 + (i % 300))}`));

describe('HTTP endpoint destination (Firehose HTTP endpoint delivery specification)', () => {
  const peers = suitePeers([BUCKET], { redisAppendOnly: true });

  it('retries non-conforming and failed responses with the same request id until a 200 echoes it; every record arrives exactly as put', async () => {
    const receiver = await startReceiver({
      accessKey: 'secret-key-flaky',
      sourceArn: arn('flaky'),
      reply: (n, requestId) =>
        n === 1 ? { status: 200, body: { requestId: 'not-the-one', timestamp: 1 } } : n === 2 ? { status: 500, body: { requestId, timestamp: 1, errorMessage: 'busy' } } : { status: 200 },
    });
    await createStream(peers.kinesisClient, 'flaky', 2);
    const service = await startService(parseConfig(yaml(peers, [{ name: 'flaky', url: receiver.url, gzip: true }])), { log: silentLogger });
    const input = payloads('flaky', 2_500); // ≈ 2 MB: two size-triggered requests and one at shutdown
    const sequences = new SequenceTracker();
    (await putAll(peers.kinesisClient, 'flaky', input.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 2_500, 30_000, 'every record read');
    expect(await service.stop()).toBe(true);
    await receiver.stop();

    expect(receiver.violations).toEqual([]);
    expect(multiset(receiver.delivered())).toEqual(multiset(input));
    // The failed attempts were retried under the same request id, and each id succeeded once.
    const byId = new Map<string, boolean[]>();
    for (const r of receiver.requests) byId.set(r.requestId, [...(byId.get(r.requestId) ?? []), r.accepted]);
    expect(receiver.requests.length).toBe(byId.size + 2);
    for (const outcomes of byId.values()) expect(outcomes.filter(Boolean)).toHaveLength(1); // accepted once, last
    for (const outcomes of byId.values()) expect(outcomes.at(-1)).toBe(true);
    expect(receiver.requests[0]!.headers['content-encoding']).toBe('gzip');
    expect(JSON.parse(String(receiver.requests[0]!.headers['x-amz-firehose-common-attributes']))).toEqual({ commonAttributes: { env: 'test', stream: 'flaky' } });
    expect(await checkpoints(peers.redisClient, 'flaky')).toEqual(Object.fromEntries(sequences.lastByShard));
  });

  it('after the retry duration, or at once on 413, the records go to the S3 error output as http-endpoint-failed with their bytes', async () => {
    const down = await startReceiver({ sourceArn: arn('down'), reply: () => ({ status: 503, body: { errorMessage: 'maintenance' } }) });
    const tooLarge = await startReceiver({ sourceArn: arn('toolarge'), reply: () => ({ status: 413 }) });
    await createStream(peers.kinesisClient, 'down', 1);
    await createStream(peers.kinesisClient, 'toolarge', 1);
    const config = parseConfig(yaml(peers, [
      { name: 'down', url: down.url, retrySeconds: 3 },
      { name: 'toolarge', url: tooLarge.url },
    ]));
    const service = await startService(config, { log: silentLogger });
    const inputs = { down: payloads('down', 300), toolarge: payloads('toolarge', 300) };
    const sequences = { down: new SequenceTracker(), toolarge: new SequenceTracker() };
    for (const name of ['down', 'toolarge'] as const) {
      (await putAll(peers.kinesisClient, name, inputs[name].map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => sequences[name].note(r.shardId, r.sequenceNumber));
    }
    await waitFor(() => service.streams.every((s) => s.stats.recordsRead === 300), 30_000, 'every record read');
    expect(await service.stop()).toBe(true);
    await down.stop();
    await tooLarge.stop();

    for (const name of ['down', 'toolarge'] as const) {
      const objects = await readObjects(peers.s3Client, BUCKET, `${name}-failed/`);
      for (const o of objects) expect(o.key).toMatch(new RegExp(`^${name}-failed/http-endpoint-failed/\\d{4}/\\d{2}/\\d{2}/\\d{2}/${name}-1-`));
      const lines = objects.flatMap((o) => o.body.toString().split('\n').slice(0, -1)).map((l) => JSON.parse(l) as { rawData: string; errorCode: string; errorMessage: string; attemptsMade: number });
      expect(multiset(lines.map((l) => Buffer.from(l.rawData, 'base64')))).toEqual(multiset(inputs[name]));
      expect(await checkpoints(peers.redisClient, name)).toEqual(Object.fromEntries(sequences[name].lastByShard));
      if (name === 'down') {
        expect(new Set(lines.map((l) => l.errorCode))).toEqual(new Set(['HttpEndpoint.DestinationException']));
        expect(lines[0]!.errorMessage).toContain('503: maintenance');
        expect(lines[0]!.attemptsMade).toBeGreaterThan(1);
      } else {
        expect(new Set(lines.map((l) => l.errorCode))).toEqual(new Set(['HttpEndpoint.PayloadTooLarge']));
        expect(lines[0]!.attemptsMade).toBe(1);
        expect(tooLarge.requests).toHaveLength(1); // a permanent failure is not retried
      }
    }
    expect(down.violations).toEqual([]);
  });

  it('parks what never gets through in the Redis DLQ (seen over the admin endpoint and Bull Board); it survives a Redis restart; `firehose dlq redrive` delivers it all and empties it', async () => {
    let healthy = false;
    const receiver = await startReceiver({
      accessKey: 'secret-key-parked',
      sourceArn: arn('parked'),
      reply: () => (healthy ? { status: 200 } : { status: 503, body: { errorMessage: 'down for maintenance' } }),
    });
    await createStream(peers.kinesisClient, 'parked', 2);
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-dlq-')), 'streams.yaml');
    await writeFile(configPath, yaml(peers, [{ name: 'parked', url: receiver.url, retrySeconds: 1 }], true));
    const service = await startService(parseConfig(yaml(peers, [{ name: 'parked', url: receiver.url, retrySeconds: 1 }], true)), { log: silentLogger });
    const input = payloads('parked', 2_000); // ≈ 1.3 MB: one batch parks while running, the rest at shutdown
    const sequences = new SequenceTracker();
    (await putAll(peers.kinesisClient, 'parked', input.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    await waitFor(() => service.streams[0]!.stats.recordsToDeadLetterQueue > 0, 30_000, 'a batch parked while running');

    // The admin endpoint shows the same: health, the parked letters, metrics, Bull Board.
    const admin = service.adminUrl!;
    expect(await (await fetch(`${admin}/health`)).json()).toEqual({ status: 'ok', redis: 'up', deliveryStreams: ['parked'] });
    const parkedNow = service.streams[0]!.stats.recordsToDeadLetterQueue;
    const viaHttp = (await (await fetch(`${admin}/dlq?stream=parked&error=HttpEndpoint`)).json()) as { parked: Array<{ errorCode: string; shardId: string }> };
    expect(viaHttp.parked).toHaveLength(parkedNow);
    expect(viaHttp.parked[0]!.errorCode).toBe('HttpEndpoint.DestinationException');
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toContain(`firehose_dead_letter_records_total{delivery_stream="parked"} ${parkedNow}`);
    expect(metrics).toMatch(/^firehose_kinesis_iterator_age_seconds\{delivery_stream="parked",shard="shardId-\d+"\} [\d.]+$/m);
    expect(metrics).toMatch(/^firehose_budget_held_bytes \d+$/m);
    // One worker alone holds both shards' leases.
    expect(metrics).toContain('firehose_leases_held{delivery_stream="parked"} 2');
    expect(metrics).toContain('firehose_lease_takes_total{delivery_stream="parked"} 2');
    // /leases: the same rows as `firehose leases --json`; this process (host:pid by default) holds both.
    const leases = (await (await fetch(`${admin}/leases`)).json()) as Array<{ deliveryStream: string; owner: string; state: string }>;
    expect(leases.map((l) => [l.deliveryStream, l.owner, l.state])).toEqual([
      ['parked', `${hostname()}:${process.pid}`, 'open'],
      ['parked', `${hostname()}:${process.pid}`, 'open'],
    ]);
    if (hasPromtool()) {
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.status).toBe(0);
    }
    const board = await fetch(`${admin}/admin/queues`);
    expect(board.status).toBe(200);
    expect(await board.text()).toContain('<html');

    await waitFor(() => service.streams[0]!.stats.recordsRead === 2_000, 30_000, 'every record read');
    expect(await service.stop()).toBe(true); // the records reached an end: the DLQ
    expect(service.streams[0]!.stats.recordsToDeadLetterQueue).toBe(2_000);
    expect(receiver.delivered()).toHaveLength(0);
    // Entering the DLQ released the positions.
    expect(await checkpoints(peers.redisClient, 'parked')).toEqual(Object.fromEntries(sequences.lastByShard));

    const list = async () => {
      const run = firehose(['dlq', 'list', '--config', configPath, '--stream', 'parked']);
      expect((await run.exited).code).toBe(0);
      return run.stdout();
    };
    const listed = await list();
    expect(listed).toContain('parked: 2000 dead letter(s)');
    expect(listed).toMatch(/^shardId-\d+:\d+:0 {2}parked {2}httpEndpointDestination {2}HttpEndpoint\.DestinationException {2}attempts=\d+ .*503: down for maintenance/m);

    await peers.redis.restart(500); // AOF: the parked records survive
    await waitFor(async () => (await list()).includes('parked: 2000 dead letter(s)'), 20_000, 'the DLQ after the Redis restart');

    healthy = true;
    const redrive = firehose(['dlq', 'redrive', '--config', configPath, '--stream', 'parked']);
    expect((await redrive.exited).code).toBe(0);
    expect(redrive.stdout()).toContain('parked: redrove 2000 of 2000 dead letter(s)');
    expect(multiset(receiver.delivered())).toEqual(multiset(input));
    expect(receiver.violations).toEqual([]);
    expect(await list()).toContain('parked: 0 dead letter(s)');
    await receiver.stop();
  });

  it('fenced: records read under a lease another worker took are not parked by this one (the new owner reads and parks them)', async () => {
    const receiver = await startReceiver({ accessKey: 'secret-key-fenced', sourceArn: arn('fenced'), reply: () => ({ status: 503, body: { errorMessage: 'down' } }) });
    await createStream(peers.kinesisClient, 'fenced', 1);
    const service = await startService(parseConfig(yaml(peers, [{ name: 'fenced', url: receiver.url, retrySeconds: 1 }], true)), { log: silentLogger });
    const stream = service.streams[0]!;
    try {
      await putAll(peers.kinesisClient, 'fenced', payloads('fenced', 300).map((data, i) => ({ data, partitionKey: `k${i}` })));
      await waitFor(() => stream.stats.recordsRead === 300, 20_000, 'the records read');
      // Another worker takes the shard's lease (what its take script writes: a new owner, the epoch raised).
      const leases = redisKeys.leases('fenced', 'kinesis/us-east-1/fenced');
      const lease = JSON.parse((await peers.redisClient.hget(leases, 'shardId-000000000000'))!) as { owner: string; epoch: number };
      await peers.redisClient.hset(leases, 'shardId-000000000000', JSON.stringify({ ...lease, owner: 'another-worker', epoch: lease.epoch + 1 }));
      stream.flush(); // delivery fails for the retry duration, then the batch would be parked
      await waitFor(async () => Number((await (await fetch(`${service.adminUrl}/metrics`)).text()).match(/^firehose_lease_fenced_writes_refused_total\{[^}]*\} (\d+)$/m)?.[1] ?? 0) > 0, 20_000, 'the park fenced');
      expect(stream.stats.recordsToDeadLetterQueue).toBe(0);
      const dlqRedis = dlqConnection({ url: peers.redis.url });
      expect(await new DeadLetterQueue(dlqRedis, 'fenced', 16 * 1024 * 1024).count()).toBe(0);
      dlqRedis.disconnect();
      expect(await checkpoints(peers.redisClient, 'fenced')).toEqual({});
    } finally {
      await service.stop();
      await receiver.stop();
    }
  });
});
