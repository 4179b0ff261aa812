/**
 * npm run bench [-- --input FILE.ndjson] [--mb 256] [--buffer-mb 64] [--s3] [--json]
 *
 * Pushes realistic ~1 KB JSON records through the engine (an in-memory source standing in for
 * Kinesis → buffer → GZIP → a null sink, or s3rver with --s3) and, in the same run on the same
 * bytes, through plain node:zlib at the same level. Reports MiB/s, their ratios and peak RSS.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { gzip, createGzip } from 'node:zlib';
import { promisify } from 'node:util';
import { ShardProgress } from '../src/ack.js';
import { ByteBudget } from '../src/budget.js';
import { Checkpointer, type CheckpointWriter } from '../src/checkpoints.js';
import { systemClock } from '../src/clock.js';
import type { Destination, EncodedBatch } from '../src/destination.js';
import { DeliveryStream } from '../src/delivery-stream.js';
import { silentLogger } from '../src/log.js';
import type { RecordSink, Source, SourceRecord } from '../src/records.js';
import { sampleLogRecord } from '../src/dev/sample-records.js';
import { S3Destination } from '../destinations/s3/index.js';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConversionPool } from '../src/conversion/pool.js';
import { parseType } from '../src/conversion/types.js';
import { compileQuery } from '../src/partitioning/query.js';
import { defaultBudgetBytes } from '../src/assemble.js';
import type { PipelineSettings } from '../src/pipeline-settings.js';
import type { SessionSpec } from '../src/conversion/types.js';
import { s3DestinationSchema } from '../destinations/s3/config.js';
import { LOCAL_CREDENTIALS, startS3rver } from '../src/dev/peers.js';
import { MiB } from '../src/units.js';
import { benchReadPath } from './read-path.js';
import { GetRecordsDecoder } from '../src/sources/kinesis/get-records.js';

const gzipAsync = promisify(gzip);
const LEVEL = 6;
const CHUNK = 4 * MiB;

const { values } = parseArgs({
  options: {
    input: { type: 'string' },
    mb: { type: 'string', default: '256' },
    'buffer-mb': { type: 'string', default: '128' },
    s3: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    /** Seconds the Kinesis-protocol server offers records for. */
    'offer-seconds': { type: 'string', default: '20' },
    /** runtime.memoryBudgetInMBs of the service in the read-path run (its default when absent). */
    'budget-mb': { type: 'string' },
    /** Only the run over the Kinesis protocol (skips the in-memory engine lines). */
    'read-path-only': { type: 'boolean', default: false },
    /** Internal: run one engine path in this process and print its figures as JSON. */
    engine: { type: 'string' },
  },
});
const totalBytes = Number(values.mb) * MiB;
const bufferBytes = Number(values['buffer-mb']) * MiB;

/** Distinct records to cycle through: from an NDJSON file, or ~64 MiB of generated log lines. */
function loadPool(): Buffer[] {
  if (values.input) {
    const text = readFileSync(values.input);
    const out: Buffer[] = [];
    let start = 0;
    for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, start)) {
      if (i > start) out.push(text.subarray(start, i + 1));
      start = i + 1;
    }
    if (start < text.length) out.push(Buffer.concat([text.subarray(start), Buffer.from('\n')]));
    return out;
  }
  const out: Buffer[] = [];
  let bytes = 0;
  const t = Date.now();
  while (bytes < Math.min(64 * MiB, totalBytes)) {
    const record = Buffer.from(sampleLogRecord(t + out.length) + '\n');
    out.push(record);
    bytes += record.length;
  }
  return out;
}

/** The records of the run, in order, cut into the 4 MiB chunks the zlib baselines compress. */
function* recordsOfRun(pool: Buffer[]): Generator<Buffer> {
  let sent = 0;
  for (let i = 0; sent < totalBytes; i = (i + 1) % pool.length) {
    sent += pool[i]!.length;
    yield pool[i]!;
  }
}

function chunksOfRun(pool: Buffer[]): Buffer[] {
  const chunks: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const record of recordsOfRun(pool)) {
    current.push(record);
    size += record.length;
    if (size >= CHUNK) {
      chunks.push(Buffer.concat(current, size));
      current = [];
      size = 0;
    }
  }
  if (size > 0) chunks.push(Buffer.concat(current, size));
  return chunks;
}

async function zlibOneStream(chunks: Buffer[]): Promise<{ seconds: number; out: number }> {
  const t = performance.now();
  const z = createGzip({ level: LEVEL });
  let out = 0;
  z.on('data', (d: Buffer) => (out += d.length));
  const done = new Promise((resolve) => z.on('end', resolve));
  for (const chunk of chunks) if (!z.write(chunk)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return { seconds: (performance.now() - t) / 1000, out };
}

async function zlibParallelChunks(chunks: Buffer[]): Promise<{ seconds: number; out: number }> {
  const t = performance.now();
  const parts = await Promise.all(chunks.map((c) => gzipAsync(c, { level: LEVEL })));
  return { seconds: (performance.now() - t) / 1000, out: parts.reduce((s, p) => s + p.length, 0) };
}

/** Stands in for Kinesis: 4 shards, reads of 500 records, the same budget and segments as the real source. */
class MemorySource implements Source {
  readonly identity = 'memory';
  private stopped = false;
  constructor(
    private readonly pool: Buffer[],
    private readonly checkpointer: Checkpointer,
    private readonly budget: ByteBudget,
  ) {}
  async run(sink: RecordSink): Promise<void> {
    const shards: ShardProgress[] = [0, 1, 2, 3].map((i) => this.checkpointer.track(`shardId-${i}`, 1, undefined));
    const records = recordsOfRun(this.pool);
    let sequence = 0;
    for (let read = 0; !this.stopped; read++) {
      await this.budget.whenAvailable();
      const shard = shards[read % shards.length]!;
      const batch: SourceRecord[] = [];
      let bytes = 0;
      const arrival = Date.now();
      for (let n = 0; n < 500; n++) {
        const next = records.next();
        if (next.done) break;
        bytes += next.value.length;
        batch.push({ data: next.value, partitionKey: 'k', shardId: shard.shardId, sequenceNumber: String(++sequence), subSequenceNumber: 0, approximateArrivalTimestamp: arrival, segment: undefined! });
      }
      if (batch.length === 0) break;
      const segment = shard.open(String(sequence), batch.length, bytes);
      for (const r of batch) (r as { segment: typeof segment }).segment = segment;
      sink.accept(batch);
      if (read % 8 === 0) await new Promise((r) => setImmediate(r)); // let zlib callbacks and deliveries run
    }
  }
  stop(): void {
    this.stopped = true;
  }
  get outstandingSegments(): number {
    return this.checkpointer.outstandingSegments;
  }
  close(): Promise<boolean> {
    return this.checkpointer.stop();
  }
  status() {
    return {};
  }
}

class NullDestination implements Destination {
  bytes = 0;
  async deliver(batch: EncodedBatch) {
    this.bytes += batch.encodedBytes;
    return { location: 'null' };
  }
  async close() {}
}

/** Checkpoints kept nowhere: the engine benchmark measures the pipeline, not Redis. */
const nowhere: CheckpointWriter = { write: async () => [] };

/** The columns of the benchmark's log records, for the Parquet path. */
const logSchema: SessionSpec = {
  columns: [
    ['timestamp', 'timestamp'], ['level', 'string'], ['service', 'string'], ['host', 'string'], ['pid', 'int'],
    ['trace_id', 'string'], ['span_id', 'string'], ['request_id', 'string'],
    ['http', 'struct<method:string,path:string,status:int,latency_ms:double,bytes:bigint,client_ip:string,user_agent:string>'],
    ['user', 'struct<id:string,tenant:string>'], ['message', 'string'],
  ].map(([name, type]) => ({ name: name!, type: parseType(type!), nullable: true })),
  deserializer: { caseInsensitive: true, columnToJsonKeyMappings: {}, convertDotsInJsonKeysToUnderscores: false },
  compression: 'SNAPPY',
  pageSizeBytes: MiB,
  rowGroupBytes: 8 * MiB,
  enableDictionaryCompression: true,
};

type EngineMode = 'gzip' | 'parquet' | 'partitioned';
const PARTITIONS = 200;

/** The pool's records, each with a "customer" field: 200 values in turn, for dynamic partitioning. */
function withCustomers(pool: Buffer[]): Buffer[] {
  return pool.map((record, i) => Buffer.concat([Buffer.from(`{"customer":"c-${String(i % PARTITIONS).padStart(3, '0')}",`), record.subarray(1)]));
}

interface EngineFigures {
  seconds: number;
  out: number;
  objects: number;
  peakRss: number;
  /** RSS just before the engine ran (its conversion threads started, for Parquet). */
  rssIdle: number;
  failed: number;
  /** The most partitions holding records at once, and the most budget bytes held (partitioned run). */
  peakPartitions: number;
  peakHeldMiB: number;
  budgetMiB: number;
}

async function runEngine(pool: Buffer[], mode: EngineMode): Promise<EngineFigures> {
  let s3: Awaited<ReturnType<typeof startS3rver>> | undefined;
  let destination: Destination;
  const nullSink = new NullDestination();
  if (values.s3) {
    s3 = await startS3rver(['bench']);
    process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
    destination = new S3Destination(s3DestinationSchema.parse({ bucket: 'bench', endpoint: s3.endpoint, compressionFormat: 'GZIP' }), {
      deliveryStreamName: 'bench',
      deliveryStreamArn: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/bench',
      log: silentLogger,
    });
  } else destination = nullSink;

  const conversions = mode === 'parquet' ? new ConversionPool(2, silentLogger) : undefined;
  conversions?.start();
  if (conversions) {
    // Idle, for the Parquet path, is the process with its conversion threads up, as the service
    // starts them: each thread converts one record first.
    const record = pool[0]!;
    await Promise.all([0, 1].map(() => conversions.encode(logSchema, new Uint8Array(record), Uint32Array.of(record.length))));
  }
  const rssIdle = process.memoryUsage.rss();
  const pipeline: PipelineSettings = {
    buffer: { sizeBytes: bufferBytes, intervalMs: 900_000, encoding: mode === 'parquet' ? 'PARQUET' : 'GZIP', appendNewlineDelimiter: false },
    errorOutputEncoding: 'UNCOMPRESSED',
    ...(mode === 'parquet' ? { conversion: logSchema } : {}),
    ...(mode === 'partitioned' ? { processing: { metadataExtraction: compileQuery('{customer: .customer}') }, partitioning: { queryKeys: ['customer'], lambdaKeys: [] } } : {}),
  };
  // The budget the service gives such a stream by default.
  const budget = new ByteBudget(defaultBudgetBytes([pipeline]));
  const checkpointer = new Checkpointer(nowhere, silentLogger);
  const source = new MemorySource(pool, checkpointer, budget);
  let out = 0;
  const stream = new DeliveryStream({
    name: 'bench',
    source,
    destination,
    pipeline,
    budget,
    ...(conversions ? { conversions } : {}),
    identity: { region: 'us-east-1', deliveryStreamArn: 'bench', source: { event: {} } },
    clock: systemClock,
    log: silentLogger,
    onDelivered: (e) => (out += e.encodedBytes),
  });
  let peakRss = process.memoryUsage.rss();
  let peakPartitions = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakPartitions = Math.max(peakPartitions, stream.buffers.partitions);
  }, 20);
  const t = performance.now();
  await stream.start(); // resolves when the source ran out
  await stream.stop(600_000); // seals the last buffer and waits for its delivery
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  await s3?.stop();
  await conversions?.close();
  return { seconds, out, objects: stream.stats.objectsDelivered, peakRss, rssIdle, failed: stream.stats.recordsToErrorOutput, peakPartitions, peakHeldMiB: Math.round(budget.peakHeld / MiB), budgetMiB: budget.limit / MiB };
}

/** One engine path, in its own process so its peak RSS is its own. */
function engineInChild(mode: EngineMode) {
  const args = [fileURLToPath(import.meta.url), '--engine', mode, '--mb', String(values.mb), '--buffer-mb', String(values['buffer-mb'])];
  if (values.input) args.push('--input', values.input);
  if (values.s3) args.push('--s3');
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as EngineFigures & { rssBefore: number };
}

/**
 * GetRecords responses of the pool's records (10 MB of data each, as Kinesis answers a shard that
 * is behind), decoded by the reader's decoder as 64 KiB socket chunks, against the plain way on the
 * same bytes: the chunks joined, JSON.parse, Buffer.from(Data, 'base64') per record. The median of
 * five rounds of each, interleaved, in ms per MiB of records.
 */
function benchDecode(pool: Buffer[]): { decoderMsPerMiB: number; plainMsPerMiB: number } {
  const responses: Buffer[][] = [];
  let dataBytes = 0;
  let k = 0;
  for (let r = 0; r < 4; r++) {
    const records: string[] = [];
    for (let bytes = 0; bytes < 10 * 1000 * 1000; k = (k + 1) % pool.length) {
      const data = pool[k]!;
      bytes += data.length;
      records.push(`{"SequenceNumber":"49590338271490256608559692538361571095921575989136${String(r * 100_000 + records.length).padStart(8, '0')}","ApproximateArrivalTimestamp":1764612345.678,"Data":"${data.toString('base64')}","PartitionKey":"pk-${k % 64}"}`);
      dataBytes += data.length;
    }
    const body = Buffer.from(`{"MillisBehindLatest":1000,"NextShardIterator":"AAAA","Records":[${records.join(',')}]}`);
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 64 * 1024) chunks.push(Buffer.from(body.subarray(at, at + 64 * 1024)));
    responses.push(chunks);
  }
  const decoder = () => {
    let n = 0;
    for (const chunks of responses) {
      const d = new GetRecordsDecoder(chunks.reduce((s, c) => s + c.length, 0));
      for (const chunk of chunks) d.push(chunk);
      n += d.end().data.length;
    }
    return n;
  };
  const plain = () => {
    let n = 0;
    for (const chunks of responses) {
      const { Records } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Records: Array<{ Data: string }> };
      for (const record of Records) n += Buffer.from(record.Data, 'base64').length > 0 ? 1 : 0;
    }
    return n;
  };
  const ms = { decoder: [] as number[], plain: [] as number[] };
  for (let round = 0; round < 5; round++) {
    for (const [name, run] of [['decoder', decoder], ['plain', plain]] as const) {
      const t = performance.now();
      run();
      ms[name].push(performance.now() - t);
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[2]! / (dataBytes / MiB);
  return { decoderMsPerMiB: +median(ms.decoder).toFixed(2), plainMsPerMiB: +median(ms.plain).toFixed(2) };
}

async function main() {
  if (values.engine) {
    const mode = values.engine as EngineMode;
    const pool = mode === 'partitioned' ? withCustomers(loadPool()) : loadPool();
    const rssBefore = process.memoryUsage.rss();
    const result = await runEngine(pool, mode);
    process.stdout.write(JSON.stringify({ ...result, rssBefore }) + '\n');
    return;
  }
  const readPath = await benchReadPath(loadPool(), {
    offerSeconds: Number(values['offer-seconds']),
    bufferMiB: bufferBytes / MiB,
    share: 0.8,
    ...(values['budget-mb'] ? { budgetMiB: Number(values['budget-mb']) } : {}),
  });
  const readPathLines = [
    `kinesis    firehose run ← Kinesis protocol, ${readPath.shards} shards offering ${readPath.offeredMiBs} MiB/s = 0.8 × the 2-core gzip-6 ceiling (${readPath.ceilingMiBs} MiB/s), GZIP-6, ${bufferBytes / MiB} MiB buffer, s3rver`,
    `kinesis    sustained ${readPath.sustainedMiBs} MiB/s = ${readPath.sustainedVsOffered}× offered; ${readPath.behindAfterOfferSeconds} s behind when the offer ended; caught up ${readPath.catchUpSeconds} s later; ${readPath.readMiB} MiB in ${readPath.objects} objects`,
    `kinesis    CPU ${readPath.cpuMsPerMiB} ms/MiB = gzip-6 ${readPath.gzipCpuMsPerMiB} + ${readPath.beyondGzipMsPerMiB} beyond (${readPath.beyondGzipVsGzip}× gzip's)`,
    `kinesis    cores used: the service ${readPath.serviceCores}, the Kinesis-protocol server and s3rver beside it ${readPath.peersCores} (of 2)`,
    `kinesis    peak RSS ${readPath.peakRssAboveIdleMiB} MiB above idle (idle ${readPath.idleRssMiB} MiB), budget ${values['budget-mb'] ? `${values['budget-mb']} MiB` : 'default'}`,
  ];
  if (values['read-path-only']) {
    process.stdout.write((values.json ? JSON.stringify(readPath) : readPathLines.join('\n')) + '\n');
    return;
  }
  const gzipRun = engineInChild('gzip');
  const parquetRun = engineInChild('parquet');
  const partitionedRun = engineInChild('partitioned');
  const pool = loadPool();
  const poolBytes = pool.reduce((s, r) => s + r.length, 0);
  const chunks = chunksOfRun(pool);
  const inputBytes = chunks.reduce((s, c) => s + c.length, 0);
  const mibs = (seconds: number) => inputBytes / MiB / seconds;
  const one = await zlibOneStream(chunks);
  const parallel = await zlibParallelChunks(chunks);
  const decode = benchDecode(pool);

  const result = {
    input: values.input ?? 'generated ~1 KB JSON log records',
    inputMiB: +(inputBytes / MiB).toFixed(1),
    records: Math.round((inputBytes / poolBytes) * pool.length),
    gzipLevel: LEVEL,
    bufferMiB: bufferBytes / MiB,
    sink: values.s3 ? 's3rver' : 'null',
    zlibOneStreamMiBs: +mibs(one.seconds).toFixed(1),
    zlibParallelChunksMiBs: +mibs(parallel.seconds).toFixed(1),
    engineMiBs: +mibs(gzipRun.seconds).toFixed(1),
    engineVsOneStream: +(one.seconds / gzipRun.seconds).toFixed(2),
    engineVsParallelChunks: +(parallel.seconds / gzipRun.seconds).toFixed(2),
    compressionRatioZlib: +(inputBytes / one.out).toFixed(2),
    compressionRatioEngine: +(inputBytes / gzipRun.out).toFixed(2),
    objects: gzipRun.objects,
    rssBeforeEngineMiB: Math.round(gzipRun.rssBefore / MiB),
    peakRssMiB: Math.round(gzipRun.peakRss / MiB),
    parquetMiBs: +mibs(parquetRun.seconds).toFixed(1),
    parquetVsGzipEngine: +(gzipRun.seconds / parquetRun.seconds).toFixed(2),
    parquetRatio: +(inputBytes / parquetRun.out).toFixed(2),
    parquetObjects: parquetRun.objects,
    parquetFailedRecords: parquetRun.failed,
    parquetPeakRssMiB: Math.round(parquetRun.peakRss / MiB),
    parquetRssBeforeMiB: Math.round(parquetRun.rssBefore / MiB),
    parquetRssIdleMiB: Math.round(parquetRun.rssIdle / MiB),
    parquetPeakRssAboveIdleMiB: Math.round((parquetRun.peakRss - parquetRun.rssIdle) / MiB),
    partitionedMiBs: +mibs(partitionedRun.seconds).toFixed(1),
    partitionedVsGzipEngine: +(gzipRun.seconds / partitionedRun.seconds).toFixed(2),
    partitionedObjects: partitionedRun.objects,
    partitionedPeakPartitions: partitionedRun.peakPartitions,
    partitionedPeakHeldMiB: partitionedRun.peakHeldMiB,
    partitionedBudgetMiB: partitionedRun.budgetMiB,
    partitionedPeakRssMiB: Math.round(partitionedRun.peakRss / MiB),
    inputPoolMiB: Math.round(poolBytes / MiB),
    gzipMsPerMiB: +((one.seconds * 1000) / (inputBytes / MiB)).toFixed(1),
    decoderMsPerMiB: decode.decoderMsPerMiB,
    plainDecodeMsPerMiB: decode.plainMsPerMiB,
    readPath,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
    return;
  }
  const lines = [
    `input      ${result.inputMiB} MiB, ${result.records} records (${result.input}; distinct pool ${result.inputPoolMiB} MiB, cycled)`,
    `settings   gzip level ${LEVEL}, buffer ${result.bufferMiB} MiB, sink ${result.sink}, ${(await import('node:os')).cpus().length} cores`,
    `node:zlib  one gzip stream (one core)          ${result.zlibOneStreamMiBs} MiB/s   ratio ${result.compressionRatioZlib}×`,
    `node:zlib  4 MiB chunks in parallel (ceiling)  ${result.zlibParallelChunksMiBs} MiB/s`,
    `engine     source → buffer → gzip → sink       ${result.engineMiBs} MiB/s   ratio ${result.compressionRatioEngine}×, ${result.objects} objects`,
    `ratio      engine / one-stream zlib = ${result.engineVsOneStream}×,  engine / parallel-chunk zlib = ${result.engineVsParallelChunks}×`,
    `memory     peak RSS ${result.peakRssMiB} MiB (${result.rssBeforeEngineMiB} MiB before the engine ran, holding the input pool)`,
    `parquet    source → buffer → Parquet (SNAPPY) → sink   ${result.parquetMiBs} MiB/s of JSON in = ${result.parquetVsGzipEngine}× the GZIP path, ratio ${result.parquetRatio}×, ${result.parquetObjects} objects, ${result.parquetFailedRecords} records failed`,
    `memory     parquet peak RSS ${result.parquetPeakRssMiB} MiB = ${result.parquetPeakRssAboveIdleMiB} MiB above idle (${result.parquetRssIdleMiB} MiB with the conversion threads up; ${result.parquetRssBeforeMiB} MiB before they started)`,
    `partitions source → query {customer: .customer} → ${PARTITIONS} partitions → gzip → sink   ${result.partitionedMiBs} MiB/s = ${result.partitionedVsGzipEngine}× unpartitioned, ${result.partitionedObjects} objects, at most ${result.partitionedPeakPartitions} partitions open`,
    `memory     partitioned: budget held at most ${result.partitionedPeakHeldMiB} of ${result.partitionedBudgetMiB} MiB, peak RSS ${result.partitionedPeakRssMiB} MiB`,
    `decode     GetRecords responses (10 MB, 64 KiB chunks) by the reader: ${result.decoderMsPerMiB} ms/MiB = ${+(result.decoderMsPerMiB / result.plainDecodeMsPerMiB).toFixed(2)}× JSON.parse + Buffer.from(base64) on the same bytes (${result.plainDecodeMsPerMiB} ms/MiB), ${+(result.decoderMsPerMiB / result.gzipMsPerMiB).toFixed(2)}× one-stream gzip-6's ${result.gzipMsPerMiB} ms/MiB`,
    ...readPathLines,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
