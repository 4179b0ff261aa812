/**
 * The path users run, measured: `firehose run` (its own process) reading a server that speaks the
 * Kinesis protocol (its own process) with N shards offering 0.8 × the 2-core gzip ceiling measured
 * in the same run on the same bytes, GZIP-6 into 128 MiB buffers, S3 on s3rver (its own process).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { LOCAL_CREDENTIALS, startRedis } from '../src/dev/peers.js';
import { MiB } from '../src/units.js';

const gzipAsync = promisify(gzip);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const TICK_MS = 1000 / 100; // /proc times are in clock ticks of 10 ms

export interface ReadPathFigures {
  shards: number;
  offeredMiBs: number;
  ceilingMiBs: number;
  sustainedMiBs: number;
  sustainedVsOffered: number;
  behindAfterOfferSeconds: number;
  catchUpSeconds: number;
  cpuMsPerMiB: number;
  gzipCpuMsPerMiB: number;
  beyondGzipMsPerMiB: number;
  beyondGzipVsGzip: number;
  idleRssMiB: number;
  peakRssAboveIdleMiB: number;
  readMiB: number;
  objects: number;
  /** Cores the Kinesis-protocol server and s3rver took meanwhile, on the same machine. */
  peersCores: number;
  /** Cores the service took. */
  serviceCores: number;
}

/** node:zlib gzip-6 of the same bytes in 4 MiB chunks on both cores: MiB/s and CPU ms per MiB. */
async function gzipCeiling(pool: Buffer[]): Promise<{ mibs: number; cpuMsPerMiB: number }> {
  const chunks: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (let round = 0; round < 4; round++) {
    for (const r of pool) {
      current.push(r);
      size += r.length;
      if (size >= 4 * MiB) {
        chunks.push(Buffer.concat(current, size));
        current = [];
        size = 0;
      }
    }
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const cpu = process.cpuUsage();
  const t = performance.now();
  await Promise.all(chunks.map((c) => gzipAsync(c, { level: 6 })));
  const seconds = (performance.now() - t) / 1000;
  const used = process.cpuUsage(cpu);
  return { mibs: bytes / MiB / seconds, cpuMsPerMiB: (used.user + used.system) / 1000 / (bytes / MiB) };
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`exited (${code}) before it was ready`)));
  });
}

function procFigures(pid: number): { cpuMs: number; rssBytes: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuMs, rssBytes: Number(rss?.[1] ?? 0) * 1024 };
  } catch {
    return undefined;
  }
}

interface ServerStats {
  t0: number;
  offerMs: number;
  now: number;
  shards: Array<{ offered: number; offeredBytes: number; read: number; readBytes: number; behindMs: number }>;
}

export async function benchReadPath(pool: Buffer[], options: { offerSeconds: number; bufferMiB: number; share: number; budgetMiB?: number }): Promise<ReadPathFigures> {
  const ceiling = await gzipCeiling(pool);
  const offered = options.share * ceiling.mibs;
  const shards = Math.ceil(offered / 2);
  const perShard = offered / shards;
  const dir = await mkdtemp(join(tmpdir(), 'firehose-bench-'));
  const poolFile = join(dir, 'pool.ndjson');
  await writeFile(poolFile, Buffer.concat(pool));
  const children: ChildProcess[] = [];
  const redis = await startRedis();
  try {
    const s3 = spawn(process.execPath, [here('./s3-server.js'), 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(s3);
    const startIn = 6;
    const kinesis = spawn(process.execPath, [here('./kinesis-server.js'), '--shards', String(shards), '--mib-per-shard', perShard.toFixed(3), '--seconds', String(options.offerSeconds), '--start-in', String(startIn), '--input', poolFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(kinesis);
    const [s3Endpoint, kinesisEndpoint] = await Promise.all([firstLine(s3), firstLine(kinesis)]);
    const configPath = join(dir, 'bench.yaml');
    await writeFile(
      configPath,
      `redis: { url: "${redis.url}" }
${options.budgetMiB ? `runtime: { memoryBudgetInMBs: ${options.budgetMiB} }` : ''}
deliveryStreams:
  - deliveryStreamName: bench
    kinesisStreamSource: { streamName: bench, endpoint: "${kinesisEndpoint}", startingPosition: TRIM_HORIZON }
    s3Destination:
      bucket: bench
      endpoint: "${s3Endpoint}"
      prefix: bench/
      compressionFormat: GZIP
      bufferingHints: { sizeInMBs: ${options.bufferMiB}, intervalInSeconds: 60 }
      manifests: { enabled: ${process.env.FIREHOSE_BENCH_MANIFESTS !== 'off'} }
`,
    );
    // FIREHOSE_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir DIR" profiles the service; its stdout goes to FIREHOSE_BENCH_STDOUT.
    const flags = process.env.FIREHOSE_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
    const stdout = process.env.FIREHOSE_BENCH_STDOUT ? openSync(process.env.FIREHOSE_BENCH_STDOUT, 'w') : 'ignore';
    const service = spawn(process.execPath, [...flags, here('../src/cli.js'), 'run', '--config', configPath], {
      stdio: ['ignore', stdout, 'pipe'],
      env: { ...process.env, AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', FIREHOSE_LOG_LEVEL: 'info' },
    });
    children.push(service);
    let objects = 0;
    service.stderr!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.includes('"msg":"delivered"')) objects++;
    });
    const stats = async () => (await (await fetch(`${kinesisEndpoint}/stats`)).json()) as ServerStats;
    const first = await stats();
    let idleRss = 0;
    let peakRss = 0;
    let cpuAtStart: number | undefined;
    let peersAtStart = 0;
    let startedAt = 0;
    const peersCpuMs = () => (procFigures(kinesis.pid!)?.cpuMs ?? 0) + (procFigures(s3.pid!)?.cpuMs ?? 0);
    let behindAfterOffer = 0;
    let readAtOfferEnd = 0;
    let caughtUpAt: number | undefined;
    const offerEnd = first.t0 + options.offerSeconds * 1000;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const proc = procFigures(service.pid!);
      if (!proc) throw new Error('the service exited during the benchmark');
      const now = Date.now();
      if (now < first.t0) {
        idleRss = Math.max(idleRss, proc.rssBytes);
        continue;
      }
      if (cpuAtStart === undefined) {
        cpuAtStart = proc.cpuMs;
        peersAtStart = peersCpuMs();
        startedAt = now;
      }
      peakRss = Math.max(peakRss, proc.rssBytes);
      const s = await stats();
      const read = s.shards.reduce((n, x) => n + x.readBytes, 0);
      if (now >= offerEnd && readAtOfferEnd === 0) {
        readAtOfferEnd = read;
        behindAfterOffer = Math.max(...s.shards.map((x) => x.behindMs)) / 1000;
      }
      if (now >= offerEnd && s.shards.every((x) => x.read >= x.offered)) {
        caughtUpAt = now;
        break;
      }
      if (now > offerEnd + 180_000) break;
    }
    const peersCores = (peersCpuMs() - peersAtStart) / (Date.now() - startedAt);
    const final = await stats();
    const readBytes = final.shards.reduce((n, x) => n + x.readBytes, 0);
    // Stop: the last buffer is compressed and delivered before it exits; its CPU counts too.
    let cpuAtEnd = procFigures(service.pid!)?.cpuMs ?? 0;
    const exited = new Promise((resolve) => service.once('exit', resolve));
    service.kill('SIGTERM');
    for (;;) {
      const proc = procFigures(service.pid!);
      if (!proc) break;
      cpuAtEnd = proc.cpuMs;
      peakRss = Math.max(peakRss, proc.rssBytes);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await exited;
    const serviceCores = (cpuAtEnd - (cpuAtStart ?? 0)) / (Date.now() - startedAt);
    const readMiB = readBytes / MiB;
    const cpuMsPerMiB = (cpuAtEnd - (cpuAtStart ?? 0)) / readMiB;
    const sustained = readAtOfferEnd / MiB / options.offerSeconds;
    return {
      shards,
      offeredMiBs: +offered.toFixed(1),
      ceilingMiBs: +ceiling.mibs.toFixed(1),
      sustainedMiBs: +sustained.toFixed(1),
      sustainedVsOffered: +(sustained / offered).toFixed(2),
      behindAfterOfferSeconds: +behindAfterOffer.toFixed(1),
      catchUpSeconds: caughtUpAt ? +((caughtUpAt - offerEnd) / 1000).toFixed(1) : NaN,
      cpuMsPerMiB: +cpuMsPerMiB.toFixed(1),
      gzipCpuMsPerMiB: +ceiling.cpuMsPerMiB.toFixed(1),
      beyondGzipMsPerMiB: +(cpuMsPerMiB - ceiling.cpuMsPerMiB).toFixed(1),
      beyondGzipVsGzip: +((cpuMsPerMiB - ceiling.cpuMsPerMiB) / ceiling.cpuMsPerMiB).toFixed(2),
      idleRssMiB: Math.round(idleRss / MiB),
      peakRssAboveIdleMiB: Math.round((peakRss - idleRss) / MiB),
      readMiB: Math.round(readMiB),
      objects,
      peersCores: +peersCores.toFixed(2),
      serviceCores: +serviceCores.toFixed(2),
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await redis.stop();
    // Its input pool (64 MiB) and config; s3rver's process removes its own directory as it stops.
    await rm(dir, { recursive: true, force: true });
  }
}
