import { spawn } from 'node:child_process';
import * as zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localAwsEnvironment } from '../src/dev/peers.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { CLI, firehose } from './helpers/cli.js';
import { checkpoints, createStream, multiset, putAll, readObjects, suitePeers, waitFor, type Peers } from './helpers/harness.js';
import { startReceiver } from './helpers/http-receiver.js';
import { startBulkServer } from './helpers/bulk-server.js';

const ARCHIVE = 'replay-archive';
const BACKUP = 'replay-backup';
const arn = (name: string) => `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`;

function yaml(peers: Peers, receiverUrl: string, clusterUrl = 'http://127.0.0.1:9'): string {
  /** A delivery stream into the test's HTTP receiver (its requests say which stream sent them). */
  const httpStream = (name: string, stream: string, idleMs?: number) => `  - deliveryStreamName: ${name}
    kinesisStreamSource: { streamName: ${stream}, endpoint: "${peers.kinesis.endpoint}"${idleMs ? `, idleTimeBetweenReadsInMillis: ${idleMs}` : ''} }
    httpEndpointDestination:
      endpointConfiguration: { url: "${receiverUrl}", name: receiver }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      s3Configuration: { bucket: ${BACKUP}, endpoint: "${peers.s3.endpoint}" }`;
  return `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30 }
deliveryStreams:
  - deliveryStreamName: archived
    kinesisStreamSource: { streamName: replay-source, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    s3Destination: { bucket: ${ARCHIVE}, prefix: "raw/", compressionFormat: GZIP, endpoint: "${peers.s3.endpoint}", bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 } }
  - deliveryStreamName: json-archived
    kinesisStreamSource: { streamName: replay-json, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    s3Destination: { bucket: ${ARCHIVE}, prefix: "json/", compressionFormat: GZIP, endpoint: "${peers.s3.endpoint}" }
  - deliveryStreamName: legacy
    kinesisStreamSource: { streamName: replay-legacy, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    s3Destination: { bucket: ${ARCHIVE}, prefix: "legacy/", appendNewlineDelimiter: true, manifests: { enabled: false }, endpoint: "${peers.s3.endpoint}" }
${httpStream('replayed', 'replay-target')}
  - deliveryStreamName: exact
    kinesisStreamSource: { streamName: replay-target, endpoint: "${peers.kinesis.endpoint}" }
    s3Destination: { bucket: ${ARCHIVE}, prefix: "exact/", exactlyOnce: true, endpoint: "${peers.s3.endpoint}", bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 } }
${httpStream('live', 'replay-live', 200)}
${httpStream('resharded', 'replay-split')}
  - deliveryStreamName: searched
    kinesisStreamSource: { streamName: replay-target, endpoint: "${peers.kinesis.endpoint}" }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "${clusterUrl}"
      indexName: replayed
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      s3Configuration: { bucket: ${BACKUP}, endpoint: "${peers.s3.endpoint}" }
`;
}

/** Binary records with no delimiter: newlines, zeros, anything — only a manifest can split them. */
const binary = (phase: string, n: number) => Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from(`${phase}:${i}:`), randomBytes(64 + (i % 200)), Buffer.from('\n\0')]));

describe('firehose replay from the S3 archive', () => {
  const peers = suitePeers([ARCHIVE, BACKUP]);
  const phases: Record<'one' | 'two' | 'three', Buffer[]> = { one: binary('one', 400), two: binary('two', 400), three: binary('three', 400) };
  const legacyLines = Array.from({ length: 200 }, (_, i) => Buffer.from(`{"legacy":${i}}`));
  const documents = Array.from({ length: 300 }, (_, i) => Buffer.from(JSON.stringify({ doc: i, text: `document ${i}` })));
  /** Arrival-time boundaries: before phase one, between the phases (mid-gap), after phase three. */
  const bounds: number[] = [];
  let configPath = '';
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let cluster: Awaited<ReturnType<typeof startBulkServer>>;

  beforeAll(async () => {
    // Two streams deliver to it; each request says which one (the source ARN header).
    receiver = await startReceiver({ sourceArn: arn('replayed'), reply: () => ({ status: 200 }) });
    cluster = await startBulkServer(() => 201);
    const dir = await mkdtemp(join(tmpdir(), 'firehose-replay-'));
    configPath = join(dir, 'streams.yaml');
    await writeFile(configPath, yaml(peers, receiver.url, cluster.url));
    await createStream(peers.kinesisClient, 'replay-source', 2);
    await createStream(peers.kinesisClient, 'replay-legacy', 1);
    await createStream(peers.kinesisClient, 'replay-json', 2);
    await createStream(peers.kinesisClient, 'replay-target', 1);
    // The archive: three phases put 2.5 s apart, delivered by the archiving stream itself.
    const config = parseConfig(yaml(peers, receiver.url));
    const service = await startService({ ...config, deliveryStreams: config.deliveryStreams.filter((s) => ['archived', 'legacy', 'json-archived'].includes(s.deliveryStreamName)) }, { log: silentLogger });
    bounds.push(Date.now() - 1_000);
    for (const [i, phase] of (['one', 'two', 'three'] as const).entries()) {
      if (i > 0) {
        await new Promise((r) => setTimeout(r, 1_250));
        bounds.push(Date.now());
        await new Promise((r) => setTimeout(r, 1_250));
      }
      await putAll(peers.kinesisClient, 'replay-source', phases[phase].map((data, j) => ({ data, partitionKey: `${phase}-${j}` })));
    }
    await putAll(peers.kinesisClient, 'replay-legacy', legacyLines.map((data, j) => ({ data, partitionKey: `l${j}` })));
    await putAll(peers.kinesisClient, 'replay-json', documents.map((data, j) => ({ data, partitionKey: `d${j}` })));
    bounds.push(Date.now() + 1_000);
    await waitFor(() => service.streams.map((s) => s.stats.recordsRead).join() === '1200,300,200', 30_000, 'the archive read');
    expect(await service.stop()).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await receiver?.stop();
    await cluster?.stop();
  });

  const iso = (t: number) => new Date(t).toISOString();
  const replayCli = (args: string[], options: { ownProcessGroup?: boolean } = {}) => firehose(['replay', '--config', configPath, '--to', 'replayed', ...args], {}, options);
  const deliveredSince = (count: number) => receiver.requests.slice(count).filter((r) => r.accepted).flatMap((r) => r.records);

  it('writes a manifest beside every archived object, small per record', async () => {
    const objects = await readObjects(peers.s3Client, ARCHIVE, 'raw/');
    const manifests = await readObjects(peers.s3Client, ARCHIVE, '_manifests/');
    expect(objects.length).toBeGreaterThan(0);
    expect(manifests.filter((m) => m.key.includes('/raw/')).length).toBe(objects.length);
    expect(manifests.some((m) => m.key.includes('/legacy/'))).toBe(false); // manifests: {enabled: false}
    const stored = await Promise.all(
      manifests.filter((m) => m.key.includes('/raw/')).map(async (m) => (await peers.s3Client.send(new (await import('@aws-sdk/client-s3')).GetObjectCommand({ Bucket: ARCHIVE, Key: m.key }))).ContentLength!),
    );
    const perRecord = stored.reduce((a, b) => a + b, 0) / 1_200;
    console.log(`manifests: ${stored.length} for ${objects.length} objects, ${perRecord.toFixed(1)} bytes per record stored`);
    expect(perRecord).toBeLessThan(40);
  });

  it('replays exactly the middle window to an HTTP stream, each record once, byte for byte; run again, it says it finished', async () => {
    const before = receiver.requests.length;
    const run = replayCli(['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[1]!), '--end', iso(bounds[2]!)]);
    expect((await run.exited).code, run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/^replay [0-9a-f]{12} finished: 400 record\(s\)/m);
    expect(receiver.violations).toEqual([]);
    expect(multiset(deliveredSince(before))).toEqual(multiset(phases.two));
    const again = replayCli(['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[1]!), '--end', iso(bounds[2]!)]);
    expect((await again.exited).code).toBe(0);
    expect(again.stdout()).toMatch(/already finished \(400 records\)/);
    expect(deliveredSince(before)).toHaveLength(400);
  });

  it('--dry-run counts the objects, records and bytes, and delivers nothing', async () => {
    const before = receiver.requests.length;
    const run = replayCli(['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[0]!), '--end', iso(bounds[2]!), '--dry-run']);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const bytes = [...phases.one, ...phases.two].reduce((sum, b) => sum + b.length, 0);
    expect(run.stdout()).toContain(`, 800 record(s), ${(bytes / 1024 / 1024).toFixed(2)} MiB would be replayed`);
    expect(receiver.requests.length).toBe(before);
  });

  it('keeps to --max-records-per-second within 10 %', async () => {
    const before = receiver.requests.length;
    const run = replayCli(['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[0]!), '--end', iso(bounds[3]!), '--id', 'rated', '--max-records-per-second', '300']);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const [, records, seconds] = /finished: ([\d,]+) record\(s\), [\d.]+ MiB in ([\d.]+) s/.exec(run.stdout())!;
    const rate = Number(records!.replace(/,/g, '')) / Number(seconds);
    console.log(`replay at --max-records-per-second 300: ${rate.toFixed(0)} records/s over ${seconds} s`);
    expect(rate).toBeGreaterThan(270);
    expect(rate).toBeLessThan(330);
    expect(multiset(deliveredSince(before))).toEqual(multiset([...phases.one, ...phases.two, ...phases.three]));
  });

  it('interrupted half-way (SIGINT) and run again: nothing missing, nothing delivered twice', async () => {
    const before = receiver.requests.length;
    const args = ['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[0]!), '--end', iso(bounds[3]!), '--id', 'interrupted', '--max-records-per-second', '200'];
    // As a terminal's Ctrl-C: SIGINT to the command's whole process group.
    const first = replayCli(args, { ownProcessGroup: true });
    await new Promise((r) => setTimeout(r, 3_000));
    process.kill(-first.child.pid!, 'SIGINT');
    expect((await first.exited).code).toBe(130);
    expect(first.stdout()).toMatch(/stopped: [\d,]+ record\(s\) handed on so far; run the same command again to resume/);
    const partial = deliveredSince(before).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(1_200);
    const second = replayCli(args);
    expect((await second.exited).code, second.stderr()).toBe(0);
    const all = deliveredSince(before);
    expect(multiset(all)).toEqual(multiset([...phases.one, ...phases.two, ...phases.three]));
  });

  it('objects without manifests: refused clearly without --framing, replayed line by line with --framing newline', async () => {
    const window = ['--from', `s3://${ARCHIVE}/legacy/`, '--start', iso(bounds[0]! - 3_600_000), '--end', iso(bounds[3]! + 3_600_000)];
    const refused = replayCli(window);
    expect((await refused.exited).code).toBe(2);
    expect(refused.stderr()).toContain('holds objects but no manifests');
    expect(refused.stderr()).toContain('--framing newline');
    expect(refused.stderr()).toContain('binary records without a delimiter cannot be split');
    const before = receiver.requests.length;
    const run = replayCli([...window, '--framing', 'newline']);
    expect((await run.exited).code, run.stderr()).toBe(0);
    expect(multiset(deliveredSince(before))).toEqual(multiset(legacyLines));
  });

  it('into OpenSearch twice, from a script through the library API: the second run overwrites, the document count is unchanged', async () => {
    const script = fileURLToPath(new URL('../examples/replay.mjs', import.meta.url));
    const run = (id: string) => {
      const child = spawn(process.execPath, [script, configPath, `s3://${ARCHIVE}/json/`, iso(bounds[0]!), iso(bounds[3]!), 'searched', id], { env: { ...process.env, ...localAwsEnvironment() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<{ code: number | null; out: string }>((resolve) => child.once('close', (code) => resolve({ code, out })));
    };
    const first = await run('search-1');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ id: 'search-1', state: 'finished', records: 300 });
    expect(cluster.indexed.size).toBe(300);
    const second = await run('search-2');
    expect(JSON.parse(second.out)).toMatchObject({ state: 'finished', records: 300 });
    // Each document indexed twice, under the id derived from its original position: still 300.
    expect(cluster.indexed.size).toBe(300);
    expect(multiset([...cluster.indexed.values()].map((d) => Buffer.from(d.source)))).toEqual(multiset(documents));
    expect([...cluster.indexed.values()].every((d) => d.count === 2)).toBe(true);
  });

  it('--to-kinesis puts exactly the window\'s records into another stream, with their partition keys, in order per original shard', async () => {
    await createStream(peers.kinesisClient, 'replay-copy', 1);
    const run = firehose(['replay', '--config', configPath, '--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[1]!), '--end', iso(bounds[3]!), '--to-kinesis', 'replay-copy', '--kinesis-endpoint', peers.kinesis.endpoint]);
    expect((await run.exited).code, run.stderr()).toBe(0);
    expect(run.stdout()).toMatch(/finished: 800 record\(s\)/);
    const { ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand } = await import('@aws-sdk/client-kinesis');
    const [shard] = (await peers.kinesisClient.send(new ListShardsCommand({ StreamName: 'replay-copy' }))).Shards!;
    let iterator = (await peers.kinesisClient.send(new GetShardIteratorCommand({ StreamName: 'replay-copy', ShardId: shard!.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    const copied: Array<{ data: Buffer; partitionKey: string }> = [];
    for (let empty = 0; iterator && empty < 3; ) {
      const page = await peers.kinesisClient.send(new GetRecordsCommand({ ShardIterator: iterator }));
      for (const r of page.Records!) copied.push({ data: Buffer.from(r.Data!), partitionKey: r.PartitionKey! });
      empty = page.Records!.length === 0 ? empty + 1 : 0;
      iterator = page.NextShardIterator;
    }
    const expected = [...phases.two.map((data, j) => ({ data, key: `two-${j}` })), ...phases.three.map((data, j) => ({ data, key: `three-${j}` }))];
    expect(multiset(copied.map((c) => c.data))).toEqual(multiset(expected.map((e) => e.data)));
    const keyOf = new Map(expected.map((e) => [e.data.toString('base64'), e.key]));
    for (const c of copied) expect(c.partitionKey).toBe(keyOf.get(c.data.toString('base64')));
    // Within each original shard, records keep their order: the partition keys of a phase come in the order they were put.
    const archive = (await readObjects(peers.s3Client, ARCHIVE, '_manifests/')).filter((m) => m.key.includes('/raw/'));
    expect(archive.length).toBeGreaterThan(0);
    const { decodeManifest, manifestEntries } = await import('../src/archive/manifest.js');
    const original = new Map<string, string[]>();
    for (const m of archive) {
      const manifest = await decodeManifest(zlib.gzipSync(m.body), m.key);
      for (const e of manifestEntries(manifest)) if (e.arrival >= bounds[1]! && e.arrival < bounds[3]!) original.set(e.shardId, [...(original.get(e.shardId) ?? []), e.partitionKey]);
    }
    for (const keys of original.values()) expect(copied.map((c) => c.partitionKey).filter((k) => keys.includes(k))).toEqual(keys);
  });

  it('--kinesis-from a time re-reads a live stream\'s own source from then on, beside its running reader; the live checkpoints do not move', async () => {
    await createStream(peers.kinesisClient, 'replay-live', 2);
    const config = parseConfig(yaml(peers, receiver.url, cluster.url));
    const live = { ...config, deliveryStreams: config.deliveryStreams.filter((s) => s.deliveryStreamName === 'live') };
    const first = await startService(live, { log: silentLogger });
    const earlier = Array.from({ length: 300 }, (_, i) => Buffer.from(`{"live":"earlier","n":${i}}`));
    const later = Array.from({ length: 300 }, (_, i) => Buffer.from(`{"live":"later","n":${i}}`));
    const start = receiver.requests.length;
    await putAll(peers.kinesisClient, 'replay-live', earlier.map((data, i) => ({ data, partitionKey: `e${i}` })));
    await new Promise((r) => setTimeout(r, 1_250));
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 1_250));
    await putAll(peers.kinesisClient, 'replay-live', later.map((data, i) => ({ data, partitionKey: `l${i}` })));
    await waitFor(() => first.streams[0]!.stats.recordsRead === 600, 20_000, 'the live stream to read both phases');
    expect(await first.stop()).toBe(true);
    const liveDelivered = receiver.requests.slice(start).filter((r) => r.accepted && r.headers['x-amz-firehose-source-arn'] === arn('live')).flatMap((r) => r.records);
    expect(multiset(liveDelivered)).toEqual(multiset([...earlier, ...later]));
    const checkpointed = await checkpoints(peers.redisClient, 'live');
    expect(Object.keys(checkpointed)).toHaveLength(2);

    // The live reader runs again (holding its leases) while the replay re-reads from `from`.
    const second = await startService(live, { log: silentLogger });
    try {
      const before = receiver.requests.length;
      const run = firehose(['replay', '--config', configPath, '--kinesis-from', iso(from), '--to', 'live']);
      expect((await run.exited).code, run.stderr()).toBe(0);
      expect(run.stdout()).toMatch(/finished: 300 record\(s\)/);
      expect(multiset(deliveredSince(before))).toEqual(multiset(later));
      expect(await checkpoints(peers.redisClient, 'live')).toEqual(checkpointed);
      expect(second.streams[0]!.stats.recordsRead).toBe(0); // the live reader saw nothing new
    } finally {
      expect(await second.stop()).toBe(true);
    }
    expect(await checkpoints(peers.redisClient, 'live')).toEqual(checkpointed);
  });

  it('into an exactly-once S3 stream: each record in exactly one object; replayed again, the same objects under the same keys, byte for byte', async () => {
    const window = ['--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[0]!), '--end', iso(bounds[3]!), '--to', 'exact'];
    const first = firehose(['replay', '--config', configPath, ...window, '--id', 'exact-1']);
    expect((await first.exited).code, first.stderr()).toBe(0);
    const once = await readObjects(peers.s3Client, ARCHIVE, 'exact/');
    // Named as the live exactly-once objects are: from the shard and sequence number of their first record.
    for (const o of once) expect(o.key).toMatch(/^exact\/\d{4}\/\d\d\/\d\d\/\d\d\/exact-shardId-\d{12}-\d+$/);
    // Binary records without a delimiter: the objects' own manifests split them.
    const { manifestEntries } = await import('../src/archive/manifest.js');
    const manifests = (await readObjects(peers.s3Client, ARCHIVE, '_manifests/')).filter((m) => m.key.includes('/exact/'));
    expect(manifests).toHaveLength(once.length);
    const records = once.flatMap((o) => {
      const manifest = JSON.parse(manifests.find((m) => m.key.endsWith(`/${o.key}.manifest.json.gz`))!.body.toString('utf8')) as Parameters<typeof manifestEntries>[0];
      return [...manifestEntries(manifest)].map((e) => o.body.subarray(e.offset, e.offset + e.length));
    });
    expect(multiset(records)).toEqual(multiset([...phases.one, ...phases.two, ...phases.three]));
    const second = firehose(['replay', '--config', configPath, ...window, '--id', 'exact-2']);
    expect((await second.exited).code, second.stderr()).toBe(0);
    const twice = await readObjects(peers.s3Client, ARCHIVE, 'exact/');
    expect(twice.map((o) => o.key).sort()).toEqual(once.map((o) => o.key).sort());
    const bodies = new Map(once.map((o) => [o.key, o.body]));
    for (const o of twice) expect(o.body.equals(bodies.get(o.key)!), o.key).toBe(true);
  });

  it('on a terminal, shows a progress bar with records, bytes, rate and ETA; elsewhere, plain lines', async () => {
    const args = ['replay', '--config', configPath, '--from', `s3://${ARCHIVE}/raw/`, '--start', iso(bounds[0]!), '--end', iso(bounds[3]!), '--to', 'replayed', '--max-records-per-second', '300'];
    // `script` runs the command on a pseudo-terminal, as a person's shell would.
    const quoted = [process.execPath, CLI, ...args, '--id', 'on-a-terminal'].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // Asynchronously: the suite's peers answer from this process.
    const tty = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn('script', ['-qefc', quoted, '/dev/null'], { env: { ...process.env, ...localAwsEnvironment() }, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.once('close', (status) => resolve({ status, stdout }));
    });
    expect(tty.status, tty.stdout).toBe(0);
    const frames = tty.stdout.split('\r').map((f) => f.replaceAll('\u001b[K', ''));
    expect(frames.some((f) => /^\[#*\.*\] \d+% [\d,]+\/1,200 records · [\d.]+ MiB · [\d,]+ rec\/s · ETA \d+ s/.test(f))).toBe(true);
    expect(tty.stdout).toMatch(/\[#{30}\] 100% 1,200\/1,200 records/);
    // Not a terminal: a plain line every 5 s (and the summary on stdout).
    const piped = firehose([...args, '--id', 'piped']);
    expect((await piped.exited).code).toBe(0);
    expect(piped.stderr()).toMatch(/^replay piped: [\d,]+ of 1,200 records, [\d.]+ MiB, [\d,]+ records\/s/m);
    expect(piped.stderr()).not.toContain('\r');
  });

  it('--kinesis-from across a split: a parent shard is read to its end before its children, so each key\'s records keep their order', async () => {
    await createStream(peers.kinesisClient, 'replay-split', 1);
    const from = Date.now() - 1_000;
    const keys = Array.from({ length: 20 }, (_, k) => `key-${k}`);
    const before = Array.from({ length: 200 }, (_, i) => ({ data: Buffer.from(`${keys[i % 20]}:before:${i}`), partitionKey: keys[i % 20]! }));
    const after = Array.from({ length: 200 }, (_, i) => ({ data: Buffer.from(`${keys[i % 20]}:after:${i}`), partitionKey: keys[i % 20]! }));
    await putAll(peers.kinesisClient, 'replay-split', before);
    const { ListShardsCommand, SplitShardCommand, DescribeStreamSummaryCommand } = await import('@aws-sdk/client-kinesis');
    const [parent] = (await peers.kinesisClient.send(new ListShardsCommand({ StreamName: 'replay-split' }))).Shards!;
    const middle = (BigInt(parent!.HashKeyRange!.StartingHashKey!) + BigInt(parent!.HashKeyRange!.EndingHashKey!)) / 2n;
    await peers.kinesisClient.send(new SplitShardCommand({ StreamName: 'replay-split', ShardToSplit: parent!.ShardId!, NewStartingHashKey: middle.toString() }));
    await waitFor(async () => (await peers.kinesisClient.send(new DescribeStreamSummaryCommand({ StreamName: 'replay-split' }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE', 10_000, 'the split');
    // kinesalite dates a split's children 1 s ahead and stamps records put into them before then
    // with that future time: a replay started at once (its --until is now) would rightly leave them out.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await putAll(peers.kinesisClient, 'replay-split', after);
    const count = receiver.requests.length;
    const run = firehose(['replay', '--config', configPath, '--kinesis-from', iso(from), '--to', 'resharded']);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const delivered = deliveredSince(count).map((b) => b.toString());
    expect(delivered.sort()).toEqual([...before, ...after].map((r) => r.data.toString()).sort());
    const inOrder = deliveredSince(count).map((b) => b.toString());
    for (const key of keys) {
      const phases = inOrder.filter((r) => r.startsWith(`${key}:`)).map((r) => r.split(':')[1]);
      expect(phases.lastIndexOf('before'), key).toBeLessThan(phases.indexOf('after'));
    }
  });
});
