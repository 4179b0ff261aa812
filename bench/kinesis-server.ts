/**
 * A server that speaks the Kinesis JSON protocol (ListShards, GetShardIterator, GetRecords) at
 * memory speed, for the benchmark: N shards, each offering records at a set rate (Kinesis allows a
 * shard 2 MiB/s), records becoming readable over time as a producer would write them, up to 10,000
 * records or 10 MB per GetRecords when a reader is behind. Responses are joined from per-record JSON
 * fragments built once, so the server costs little CPU beside the service it feeds. It runs in its
 * own process; GET /stats says what was offered and read.
 *
 *   node dist/bench/kinesis-server.js --shards 25 --mib-per-shard 2 --seconds 20 --start-in 3 [--input FILE.ndjson]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sampleLogRecord } from '../src/dev/sample-records.js';
import { MiB } from '../src/units.js';

const MAX_RECORDS = 10_000;
const MAX_BYTES = 10 * 1024 * 1024;

export interface KinesisServerOptions {
  readonly shards: number;
  readonly bytesPerSecondPerShard: number;
  /** How long records keep being offered. */
  readonly offerMs: number;
  /** Records start being offered this long after the server starts. */
  readonly startInMs: number;
  /** The records cycled through (each shard starts at another place in the pool). */
  readonly pool: readonly Buffer[];
}

export interface KinesisProtocolServer {
  readonly endpoint: string;
  shardId(shard: number): string;
  /** Records of the shard readable now. */
  offered(shard: number): number;
  sequenceNumber(shard: number, index: number): string;
  close(): Promise<void>;
}

interface Fragment {
  /** `{"Data":"…","PartitionKey":"…","SequenceNumber":"` */
  readonly head: Buffer;
  readonly dataBytes: number;
}

export function startKinesisProtocolServer(options: KinesisServerOptions, port = 0) {
  const fragments: Fragment[] = options.pool.map((data, i) => ({
    head: Buffer.from(`{"Data":"${data.toString('base64')}","PartitionKey":"pk-${i}","SequenceNumber":"`),
    dataBytes: data.length,
  }));
  // Where record k of the pool starts, in offered bytes; one cycle of the pool is `cycleBytes`.
  const prefix = new Float64Array(fragments.length + 1);
  for (let k = 0; k < fragments.length; k++) prefix[k + 1] = prefix[k]! + fragments[k]!.dataBytes;
  const cycleBytes = prefix[fragments.length]!;
  const rate = options.bytesPerSecondPerShard / 1000; // bytes per ms
  const t0 = Date.now() + options.startInMs;
  const offset = (shard: number) => Math.floor((shard * fragments.length) / Math.max(1, options.shards));
  /** Offered bytes before record i of a shard. */
  const bytesBefore = (shard: number, i: number) => {
    const k = i + offset(shard);
    const cycles = Math.floor(k / fragments.length);
    return cycles * cycleBytes + prefix[k % fragments.length]! - prefix[offset(shard)]!;
  };
  const arrivalOf = (shard: number, i: number) => t0 + bytesBefore(shard, i) / rate;
  /** Records of a shard readable at `now`: those whose arrival has come, within the offering window. */
  const available = (shard: number, now: number) => {
    const until = Math.min(now, t0 + options.offerMs);
    if (until < t0) return 0;
    let lo = 0;
    let hi = Math.ceil(((until - t0) * rate) / 1) + 1; // at least 1 byte per record
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (arrivalOf(shard, mid) <= until) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const shardId = (s: number) => `shardId-${String(s).padStart(12, '0')}`;
  const sequence = (s: number, i: number) => `49${String(s).padStart(6, '0')}${String(i).padStart(48, '0')}`;
  const positionOf = (seq: string) => Number(seq.slice(8));
  const shardOf = (id: string) => Number(id.slice('shardId-'.length));
  const read = new Array<number>(options.shards).fill(0);
  const readBytes = new Array<number>(options.shards).fill(0);
  let calls = 0;

  function getRecords(iterator: string, limit: number) {
    const [s, p] = iterator.split(':').map(Number) as [number, number];
    const now = Date.now();
    const end = Math.min(available(s, now), p + Math.min(limit, MAX_RECORDS));
    const parts: Buffer[] = [];
    let bytes = 0;
    let i = p;
    for (; i < end; i++) {
      const fragment = fragments[(i + offset(s)) % fragments.length]!;
      if (i > p && bytes + fragment.dataBytes > MAX_BYTES) break;
      bytes += fragment.dataBytes;
      parts.push(i > p ? COMMA : EMPTY, fragment.head, Buffer.from(`${sequence(s, i)}","ApproximateArrivalTimestamp":${(arrivalOf(s, i) / 1000).toFixed(3)}}`));
    }
    read[s] = Math.max(read[s]!, i);
    readBytes[s]! += bytes;
    const newest = available(s, now);
    const behind = i >= newest || newest === 0 ? 0 : Math.max(0, arrivalOf(s, newest - 1) - (i > 0 ? arrivalOf(s, i - 1) : t0));
    return Buffer.concat([Buffer.from(`{"MillisBehindLatest":${Math.round(behind)},"NextShardIterator":"${s}:${i}","Records":[`), ...parts, CLOSE]);
  }

  function handle(target: string, body: Record<string, unknown>): unknown {
    switch (target) {
      case 'ListShards':
        return {
          Shards: Array.from({ length: options.shards }, (_, s) => ({
            ShardId: shardId(s),
            HashKeyRange: { StartingHashKey: String((BigInt(2) ** 128n * BigInt(s)) / BigInt(options.shards)), EndingHashKey: String((BigInt(2) ** 128n * BigInt(s + 1)) / BigInt(options.shards) - 1n) },
            SequenceNumberRange: { StartingSequenceNumber: sequence(s, 0) },
          })),
        };
      case 'GetShardIterator': {
        const s = shardOf(String(body.ShardId));
        const type = String(body.ShardIteratorType);
        let p = 0;
        if (type === 'LATEST') p = available(s, Date.now());
        else if (type === 'AFTER_SEQUENCE_NUMBER') p = positionOf(String(body.StartingSequenceNumber)) + 1;
        else if (type === 'AT_SEQUENCE_NUMBER') p = positionOf(String(body.StartingSequenceNumber));
        else if (type === 'AT_TIMESTAMP') {
          const at = Number(body.Timestamp) * 1000;
          while (p < available(s, Date.now()) && arrivalOf(s, p) < at) p++;
        }
        return { ShardIterator: `${s}:${p}` };
      }
      default:
        return undefined;
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/stats') {
        const now = Date.now();
        const shards = Array.from({ length: options.shards }, (_, s) => {
          const offered = available(s, now);
          return { offered, offeredBytes: bytesBefore(s, offered), read: read[s]!, readBytes: readBytes[s]!, behindMs: read[s]! >= offered || offered === 0 ? 0 : Math.max(0, Math.min(now, t0 + options.offerMs) - arrivalOf(s, read[s]!)) };
        });
        const text = JSON.stringify({ t0, offerMs: options.offerMs, now, calls, shards });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
        return;
      }
      const target = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      calls++;
      let out: Buffer;
      if (target === 'GetRecords') out = getRecords(String(body.ShardIterator), Number(body.Limit ?? MAX_RECORDS));
      else {
        const answer = handle(target, body);
        if (answer === undefined) {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ __type: 'UnknownOperationException', message: `no ${target} here` }));
          return;
        }
        out = Buffer.from(JSON.stringify(answer));
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'content-length': out.length });
      res.end(out);
    });
  });
  return new Promise<KinesisProtocolServer>((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      resolve({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        shardId,
        offered: (shard) => available(shard, Date.now()),
        sequenceNumber: sequence,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

const COMMA = Buffer.from(',');
const EMPTY = Buffer.alloc(0);
const CLOSE = Buffer.from(']}');

/** Distinct records to cycle through: from an NDJSON file (one record a line), or ~32 MiB of generated log lines. */
export function recordPool(input?: string, mib = 32): Buffer[] {
  const out: Buffer[] = [];
  if (input) {
    const text = readFileSync(input);
    let start = 0;
    for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, start)) {
      if (i > start) out.push(text.subarray(start, i + 1));
      start = i + 1;
    }
    return out;
  }
  let bytes = 0;
  const t = Date.now();
  while (bytes < mib * MiB) {
    const record = Buffer.from(sampleLogRecord(t + out.length) + '\n');
    out.push(record);
    bytes += record.length;
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      shards: { type: 'string', default: '4' },
      'mib-per-shard': { type: 'string', default: '2' },
      seconds: { type: 'string', default: '20' },
      'start-in': { type: 'string', default: '3' },
      input: { type: 'string' },
    },
  });
  const pool = recordPool(values.input);
  const server = await startKinesisProtocolServer({
    shards: Number(values.shards),
    bytesPerSecondPerShard: Number(values['mib-per-shard']) * MiB,
    offerMs: Number(values.seconds) * 1000,
    startInMs: Number(values['start-in']) * 1000,
    pool,
  });
  process.stdout.write(`${server.endpoint}\n`);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}
