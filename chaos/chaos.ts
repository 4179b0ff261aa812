/**
 * The chaos run: N `firehose run` workers share a stream through their leases while workers are
 * SIGKILLed (and crash at failpoints), SIGSTOPped past their leases, added and removed, a shard is
 * split, Redis restarts and S3 goes away. At the end every object is read back from S3 and every
 * record put is accounted for.
 *
 *   npm run chaos [-- --records N --workers N --shards N --rate N]   (the long run)
 *   test/chaos.e2e.test.ts                                          (a short run inside npm test)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { ListShardsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { Redis } from 'ioredis';
import { createS3Client } from '../destinations/s3/index.js';
import { s3DestinationSchema } from '../destinations/s3/config.js';
import { storedCheckpoints } from '../src/checkpoints.js';
import { sleep } from '../src/clock.js';
import { parseConfig } from '../src/config.js';
import { localAwsEnvironment, startKinesalite, startRedis, startS3rver, type S3Server } from '../src/dev/peers.js';
import { createStream, localKinesisClient, putAll } from '../src/dev/producer.js';
import { readLeases } from '../src/leases-cli.js';

export interface ChaosOptions {
  readonly records: number;
  readonly shards: number;
  readonly workers: number;
  readonly recordsPerSecond: number;
  readonly leaseDurationInSeconds: number;
  /** SIGKILLs the run makes itself (failpoint crashes come on top). */
  readonly kills: number;
  readonly s3OutageMs: number;
  /** Crash probabilities per batch at the failpoints (FIREHOSE_FAILPOINTS). */
  readonly failpoints: string;
  /** s3Destination.exactlyOnce: duplicates must then be 0. */
  readonly exactlyOnce: boolean;
  readonly log: (line: string) => void;
}

export interface ChaosReport {
  readonly mode: string;
  readonly recordsPut: number;
  readonly delivered: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly kills: number;
  /** The SIGKILLs the run was asked to make (options.kills): what `kills` must reach. */
  readonly killsAsked: number;
  readonly failpointCrashes: number;
  readonly takeoverMs: { p50: number; p95: number; samples: number };
  readonly leaseMovesPerMinute: number;
  readonly fencedWritesRefused: number;
  readonly worstMillisBehindLatest: number;
  /** How old the newest record of a read was, at worst (kinesalite answers MillisBehindLatest 0 at the tip). */
  readonly worstIteratorAgeMs: number;
  readonly faults: readonly string[];
  readonly durationSeconds: number;
}

const STREAM = 'chaos';
const BUCKET = 'chaos-bucket';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const CLI = join(repoRoot(), 'dist', 'src', 'cli.js');

interface Worker {
  readonly id: string;
  child: ChildProcess;
  exited: Promise<void>;
  /** Stopped on purpose (SIGTERM, or a SIGKILL of the run's own): not restarted by the supervisor. */
  intended: boolean;
  adminUrl: string | undefined;
  fencedRefusals: number;
  failpointCrashes: number;
  errors: string[];
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const began = Date.now();
  // Everything here is local: s3rver accepts only its own key pair.
  Object.assign(process.env, localAwsEnvironment());
  const [redis, kinesis] = await Promise.all([startRedis({ appendOnly: true }), startKinesalite()]);
  let s3: S3Server = await startS3rver([BUCKET]);
  const s3Port = Number(new URL(s3.endpoint).port);
  const kinesisClient = localKinesisClient(kinesis.endpoint);
  const redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  redisClient.on('error', () => undefined);
  const workers: Worker[] = [];
  const faults: string[] = [];
  const takeovers: number[] = [];
  let worstBehind = 0;
  let worstIteratorAge = 0;
  let kills = 0;
  let producing = true;
  let supervising = true;

  const yaml = `
redis: { url: "${redis.url}" }
runtime:
  checkpointIntervalInMillis: 500
  shutdownTimeoutInSeconds: 60
  leaseDurationInSeconds: ${options.leaseDurationInSeconds}
  admin: { enabled: true, port: 0 }
deliveryStreams:
  - deliveryStreamName: ${STREAM}
    kinesisStreamSource:
      streamName: ${STREAM}
      endpoint: ${kinesis.endpoint}
      startingPosition: TRIM_HORIZON
      idleTimeBetweenReadsInMillis: 200
      shardDiscoveryIntervalInSeconds: 2
    s3Destination:
      bucket: ${BUCKET}
      prefix: "${STREAM}/"
      errorOutputPrefix: "${STREAM}-errors/"
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      compressionFormat: GZIP
      appendNewlineDelimiter: true
      endpoint: ${s3.endpoint}
      exactlyOnce: ${options.exactlyOnce}
`;
  const config = parseConfig(yaml);
  const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-chaos-')), 'chaos.yaml');
  await writeFile(configPath, yaml);
  const s3Client: S3Client = createS3Client(s3DestinationSchema.parse({ bucket: BUCKET, endpoint: s3.endpoint }));

  const spawnWorker = (id: string): Worker => {
    const child = spawn(process.execPath, [CLI, 'run', '--config', configPath, '--worker-id', id], {
      env: {
        ...process.env,
        ...localAwsEnvironment(),
        FIREHOSE_LOG_LEVEL: 'info',
        // The final clean stops run without failpoints: they are how the run ends, not a fault.
        FIREHOSE_FAILPOINTS: supervising ? options.failpoints : '',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const worker: Worker = { id, child, exited: Promise.resolve(), intended: false, adminUrl: undefined, fencedRefusals: 0, failpointCrashes: 0, errors: [] };
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.includes('"admin endpoint listening"')) worker.adminUrl = /"url":"([^"]+)"/.exec(line)?.[1];
        else if (line.includes('checkpoint refused') || line.includes('batch fenced') || line.includes('not parking records read under a lease')) worker.fencedRefusals++;
        else if (line.startsWith('failpoint ')) worker.failpointCrashes++;
        else if (line.includes('"level":"error"')) worker.errors.push(line);
      }
    });
    worker.exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    void worker.exited.then(async () => {
      // A crash the run did not make (a failpoint): restart it, as an init system would.
      if (worker.intended || !supervising || !workers.includes(worker)) return;
      faults.push(`${id} crashed (failpoint); restarted`);
      await sleep(500);
      if (supervising && workers.includes(worker)) replace(worker, spawnWorker(id));
    });
    return worker;
  };
  const replace = (old: Worker, fresh: Worker) => {
    const i = workers.indexOf(old);
    if (i >= 0) workers[i] = fresh;
    else workers.push(fresh);
  };
  for (let i = 1; i <= options.workers; i++) workers.push(spawnWorker(`w${i}`));

  // Worst MillisBehindLatest, as the workers' own metrics say.
  const watching = (async () => {
    while (supervising) {
      for (const w of [...workers]) {
        if (!w.adminUrl) continue;
        try {
          const text = await (await fetch(`${w.adminUrl}/metrics`, { signal: AbortSignal.timeout(1_000) })).text();
          for (const m of text.matchAll(/^firehose_kinesis_behind_latest_seconds\{[^}]*\} ([\d.e+-]+)$/gm)) worstBehind = Math.max(worstBehind, Number(m[1]) * 1000);
          for (const m of text.matchAll(/^firehose_kinesis_iterator_age_seconds\{[^}]*\} ([\d.e+-]+)$/gm)) worstIteratorAge = Math.max(worstIteratorAge, Number(m[1]) * 1000);
        } catch {
          // stopped or paused: nothing to read now
        }
      }
      await sleep(1_000);
    }
  })();

  await createStream(kinesisClient, STREAM, options.shards);
  const putIds = new Set<number>();
  const lastSequence = new Map<string, string>();
  const producer = (async () => {
    const perTick = Math.max(1, Math.round(options.recordsPerSecond / 10));
    let n = 0;
    while (n < options.records) {
      const count = Math.min(perTick, options.records - n);
      const batch = Array.from({ length: count }, (_, k) => ({ data: Buffer.from(JSON.stringify({ id: n + k, pad: 'x'.repeat(100 + ((n + k) % 400)) })), partitionKey: `k${n + k}` }));
      for (;;) {
        try {
          const results = await putAll(kinesisClient, STREAM, batch);
          results.forEach((r) => {
            const prev = lastSequence.get(r.shardId);
            if (!prev || prev.length < r.sequenceNumber.length || (prev.length === r.sequenceNumber.length && prev < r.sequenceNumber)) lastSequence.set(r.shardId, r.sequenceNumber);
          });
          break;
        } catch {
          await sleep(200); // kinesalite busy during a split: put again (ids are unique either way)
        }
      }
      for (let k = 0; k < count; k++) putIds.add(n + k);
      n += count;
      await sleep(100);
    }
    producing = false;
  })();

  const leaseDurationMs = options.leaseDurationInSeconds * 1000;
  const ownedBy = async (id: string) => (await readLeases(config, redisClient)).filter((r) => r.state === 'open' && r.owner === id).map((r) => r.shardId);
  const killOne = async () => {
    const victim = workers[Math.floor(Math.random() * workers.length)]!;
    const shards = await ownedBy(victim.id);
    victim.intended = true;
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    kills++;
    await victim.exited;
    // Taken over: each of its shards owned by a live worker other than it.
    const deadline = killedAt + 10 * leaseDurationMs;
    while (Date.now() < deadline) {
      const rows = await readLeases(config, redisClient).catch(() => []);
      const now = Date.now();
      if (shards.every((s) => rows.some((r) => r.shardId === s && ((r.owner !== null && r.owner !== victim.id && Date.parse(r.expiresAt!) > now) || r.state === 'ended')))) {
        if (shards.length > 0) takeovers.push(Date.now() - killedAt);
        break;
      }
      await sleep(50);
    }
    // Half come back under the same name (they adopt their leases again), half under a new one.
    const id = Math.random() < 0.5 ? victim.id : `${victim.id.split('-')[0]}-${kills}`;
    replace(victim, spawnWorker(id));
    faults.push(`SIGKILL ${victim.id} (${shards.length} shards); back as ${id}`);
  };

  const actions: Array<[string, () => Promise<void>]> = [
    ['kill', killOne],
    ['stop', async () => {
      const victim = workers[Math.floor(Math.random() * workers.length)]!;
      const pauseMs = Math.round(leaseDurationMs * (1.5 + Math.random() * 3.5));
      victim.child.kill('SIGSTOP');
      await sleep(pauseMs);
      victim.child.kill('SIGCONT');
      faults.push(`SIGSTOP ${victim.id} for ${pauseMs} ms`);
    }],
    ['split', async () => {
      const { Shards } = await kinesisClient.send(new ListShardsCommand({ StreamName: STREAM }));
      const open = Shards!.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
      const parent = open[0]!;
      const start = BigInt(parent.HashKeyRange!.StartingHashKey!);
      const end = BigInt(parent.HashKeyRange!.EndingHashKey!);
      await kinesisClient.send(new SplitShardCommand({ StreamName: STREAM, ShardToSplit: parent.ShardId!, NewStartingHashKey: ((start + end) / 2n).toString() }));
      faults.push(`split ${parent.ShardId}`);
    }],
    ['redis', async () => {
      await redis.restart(2_000);
      faults.push('Redis restarted (down 2 s, AOF on)');
    }],
    ['kill', killOne],
    ['add', async () => {
      const id = `w${workers.length + 1}-added`;
      workers.push(spawnWorker(id));
      faults.push(`added ${id}`);
    }],
    ['s3', async () => {
      await s3.stop({ keepDirectory: true }); // it comes back on the same directory
      await sleep(options.s3OutageMs);
      s3 = await startS3rver([BUCKET], { port: s3Port, directory: s3.directory });
      faults.push(`S3 stopped for ${options.s3OutageMs} ms`);
    }],
    ['kill', killOne],
    ['remove', async () => {
      const leaving = workers[workers.length - 1]!;
      leaving.intended = true;
      leaving.child.kill('SIGTERM');
      await leaving.exited;
      workers.splice(workers.indexOf(leaving), 1);
      faults.push(`removed ${leaving.id} (SIGTERM)`);
    }],
  ];
  // Faults start once every shard is read by someone.
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
    const rows = await readLeases(config, redisClient).catch(() => []);
    if (rows.length >= options.shards && rows.every((r) => r.state === 'ended' || r.owner !== null)) break;
  }
  // Every fault once, then kills (and pauses) until the kills are made and the records are all put.
  let step = 0;
  let madeKills = 0;
  while (producing || madeKills < options.kills) {
    const [name, act] = step < actions.length ? actions[step]! : step % 3 === 0 ? actions[1]! : actions[0]!;
    step++;
    try {
      await act();
    } catch (err) {
      faults.push(`${name} failed: ${(err as Error).message}`);
    }
    if (name === 'kill') madeKills++;
    await sleep(1_000 + Math.random() * 1_500);
  }
  await producer;
  log(`chaos: ${putIds.size} records put; ${faults.length} faults; stopping the fleet`);

  // Clean stops deliver what is buffered and checkpoint it; run again until the checkpoints reach the last records.
  supervising = false;
  const everythingCheckpointed = async () => {
    const stored = Object.values(await storedCheckpoints(redisClient, STREAM))[0] ?? {};
    return [...lastSequence].every(([shard, seq]) => {
      const at = stored[shard];
      return at === 'SHARD_END' || (at !== undefined && (at.length > seq.length || (at.length === seq.length && at >= seq)));
    });
  };
  for (let round = 1; round <= 6; round++) {
    await sleep(3_000);
    for (const w of workers) {
      w.intended = true;
      w.child.kill('SIGCONT');
      w.child.kill('SIGTERM');
    }
    await Promise.all(workers.map((w) => w.exited));
    if (await everythingCheckpointed()) break;
    for (let i = 0; i < workers.length; i++) workers[i] = spawnWorker(workers[i]!.id);
  }
  await watching;

  const ids = await readDeliveredIds(createS3Client(s3DestinationSchema.parse({ bucket: BUCKET, endpoint: s3.endpoint })));
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  let lost = 0;
  for (const id of putIds) if (!counts.has(id)) lost++;
  const rows = await readLeases(config, redisClient);
  const epochs = rows.reduce((n, r) => n + r.epoch, 0);
  const minutes = (Date.now() - began) / 60_000;
  const report: ChaosReport = {
    mode: options.exactlyOnce ? 'exactly-once' : 'default (at-least-once)',
    recordsPut: putIds.size,
    delivered: counts.size,
    lost,
    duplicated: ids.length - counts.size,
    kills,
    killsAsked: options.kills,
    failpointCrashes: faults.filter((f) => f.includes('failpoint')).length,
    takeoverMs: { p50: percentile(takeovers, 50), p95: percentile(takeovers, 95), samples: takeovers.length },
    // Every take raises an epoch; a shard's first take is not a move.
    leaseMovesPerMinute: Math.round(((epochs - rows.filter((r) => r.epoch > 0).length) / minutes) * 10) / 10,
    fencedWritesRefused: workers.reduce((n, w) => n + w.fencedRefusals, 0),
    worstMillisBehindLatest: Math.round(worstBehind),
    worstIteratorAgeMs: Math.round(worstIteratorAge),
    faults,
    durationSeconds: Math.round((Date.now() - began) / 1000),
  };
  const errors = workers.flatMap((w) => w.errors);
  if (errors.length > 0) log(`chaos: errors logged by the last workers:\n${errors.slice(0, 10).join('\n')}`);

  s3Client.destroy();
  kinesisClient.destroy();
  redisClient.disconnect();
  await Promise.all([redis.stop(), kinesis.stop(), s3.stop()]);
  return report;
}

/** Every record id in every object, read back from S3 (ListObjects v1 pages by key: s3rver's v2 tokens need a legacy cipher). */
async function readDeliveredIds(s3: S3Client): Promise<number[]> {
  const ids: number[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: BUCKET, Prefix: `${STREAM}/`, ...(marker ? { Marker: marker } : {}) }));
    for (const { Key } of page.Contents ?? []) {
      const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: Key! }));
      const body = gunzipSync(Buffer.from(await object.Body!.transformToByteArray())).toString();
      for (const line of body.split('\n')) if (line) ids.push((JSON.parse(line) as { id: number }).id);
    }
    if (!page.IsTruncated || !page.Contents?.length) break;
    marker = page.Contents.at(-1)!.Key;
  }
  s3.destroy();
  return ids;
}

export function formatReport(r: ChaosReport): string {
  const rows: Array<[string, string, string]> = [
    ['records put', String(r.recordsPut), '—'],
    ['delivered', String(r.delivered), '—'],
    ['lost', String(r.lost), '0'],
    ['duplicated', String(r.duplicated), r.mode === 'exactly-once' ? '0' : 'counted (default mode is at-least-once)'],
    ['kills (SIGKILL + failpoint crashes)', `${r.kills} + ${r.failpointCrashes}`, `SIGKILLs ≥ ${r.killsAsked}`],
    ['kill → takeover p50 / p95', `${r.takeoverMs.p50} / ${r.takeoverMs.p95} ms (${r.takeoverMs.samples} kills)`, '—'],
    ['lease moves per minute', String(r.leaseMovesPerMinute), '—'],
    ['fenced writes refused', String(r.fencedWritesRefused), '—'],
    ['worst MillisBehindLatest', `${r.worstMillisBehindLatest} ms`, '—'],
    ['worst iterator age (as the workers report it)', `${r.worstIteratorAgeMs} ms`, '—'],
  ];
  return [`chaos run, ${r.mode}, ${r.durationSeconds} s`, '| figure | result | must be |', '|---|---|---|', ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`), '', 'faults:', ...r.faults.map((f) => `- ${f}`)].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      records: { type: 'string', default: '200000' },
      workers: { type: 'string', default: '3' },
      shards: { type: 'string', default: '6' },
      rate: { type: 'string', default: '1500' },
      mode: { type: 'string', default: 'both' },
    },
  });
  const modes = values.mode === 'both' ? [true, false] : [values.mode === 'exactly-once'];
  let ok = true;
  for (const exactlyOnce of modes) {
    const report = await runChaos({
      records: Number(values.records),
      workers: Number(values.workers),
      shards: Number(values.shards),
      recordsPerSecond: Number(values.rate),
      leaseDurationInSeconds: 4,
      kills: 10,
      s3OutageMs: 30_000,
      failpoints: 'before-upload:0.03,after-intent:0.03,after-upload:0.03',
      exactlyOnce,
      log: (line) => process.stderr.write(line + '\n'),
    });
    process.stdout.write(formatReport(report) + '\n\n');
    ok &&= report.lost === 0 && (!exactlyOnce || report.duplicated === 0);
  }
  process.exit(ok ? 0 : 1);
}
