import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { sleep } from '../../src/clock.js';
import { storedCheckpoints } from '../../src/checkpoints.js';
import { LOCAL_CREDENTIALS, startKinesalite, startRedis, startS3rver, type KinesisServer, type RedisServer, type S3Server } from '../../src/dev/peers.js';
import { createStream, localKinesisClient, putAll } from '../../src/dev/producer.js';
import { createS3Client } from '../../destinations/s3/index.js';
import { s3DestinationSchema } from '../../destinations/s3/config.js';
import { silentLogger } from '../../src/log.js';
import { TransformPool } from '../../src/transform/pool.js';

export { createStream, putAll };

// s3rver accepts only its own key pair; kinesalite accepts any. The service's SDK clients use the
// default credential chain, as they would in production.
process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
process.env.AWS_REGION = 'us-east-1';

export interface Peers {
  redis: RedisServer;
  kinesis: KinesisServer;
  s3: S3Server;
  kinesisClient: KinesisClient;
  s3Client: S3Client;
  redisClient: Redis;
  stop(): Promise<void>;
}

/** Real redis-server, kinesalite and s3rver for one test file. */
export async function startPeers(buckets: string[], options: { redisAppendOnly?: boolean } = {}): Promise<Peers> {
  const [redis, kinesis, s3] = await Promise.all([
    startRedis({ appendOnly: options.redisAppendOnly ?? false }),
    startKinesalite(),
    startS3rver(buckets),
  ]);
  const kinesisClient = localKinesisClient(kinesis.endpoint);
  const s3Client = createS3Client(s3DestinationSchema.parse({ bucket: buckets[0], endpoint: s3.endpoint }));
  const redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  redisClient.on('error', () => undefined); // tests that restart Redis expect refused connections
  return {
    redis,
    kinesis,
    s3,
    kinesisClient,
    s3Client,
    redisClient,
    async stop() {
      kinesisClient.destroy();
      s3Client.destroy();
      redisClient.disconnect();
      await Promise.all([redis.stop(), kinesis.stop(), s3.stop()]);
    },
  };
}

/**
 * Real peers for one test file: started before its first test, stopped after its last. Read them
 * through the returned object, which stands for them once they are up.
 */
/** A one-thread transform pool running `module` for the suite's tests: started before them, closed after. */
export function suiteTransformPool(module: string): () => TransformPool {
  let pool: TransformPool | undefined;
  beforeAll(async () => {
    pool = new TransformPool(module, 1, {}, silentLogger);
    await pool.start();
  });
  afterAll(async () => {
    await pool?.close();
  });
  return () => pool!;
}

export function suitePeers(buckets: string[], options: { redisAppendOnly?: boolean } = {}): Peers {
  let peers: Peers | undefined;
  beforeAll(async () => {
    peers = await startPeers(buckets, options);
  });
  afterAll(async () => {
    await peers?.stop();
  });
  const started = () => {
    if (!peers) throw new Error('the peers are not started yet: use them inside a test or hook');
    return peers;
  };
  return new Proxy({} as Peers, {
    get: (_target, key) => started()[key as keyof Peers],
    // `{ ...peers, s3: other }` works as it would on the peers themselves.
    ownKeys: () => Reflect.ownKeys(started()),
    getOwnPropertyDescriptor: (_target, key) => ({ ...Reflect.getOwnPropertyDescriptor(started(), key), configurable: true }),
  });
}

export interface StreamYamlOptions {
  deliveryStreamName: string;
  streamName: string;
  bucket: string;
  prefix?: string;
  sizeInMBs?: number;
  intervalInSeconds?: number;
  compressionFormat?: 'GZIP' | 'UNCOMPRESSED';
  appendNewlineDelimiter?: boolean;
  startingPosition?: string;
  errorOutputPrefix?: string;
  /** More YAML under s3Destination, indented by six spaces (processingConfiguration, …). */
  s3Extra?: string;
}

/** `s3Extra` for dynamic partitioning by a MetadataExtraction query, e.g. "{customer: .customer_id}". */
export function partitionByQuery(query: string): string {
  return `
      dynamicPartitioningConfiguration: { enabled: true }
      processingConfiguration:
        enabled: true
        processors:
          - type: MetadataExtraction
            parameters: { metadataExtractionQuery: "${query}", jsonParsingEngine: JQ-1.6 }`;
}

export function streamYaml(peers: Pick<Peers, 'kinesis' | 's3'>, o: StreamYamlOptions): string {
  return `
  - deliveryStreamName: ${o.deliveryStreamName}
    kinesisStreamSource:
      streamName: ${o.streamName}
      endpoint: ${peers.kinesis.endpoint}
      startingPosition: ${o.startingPosition ?? 'TRIM_HORIZON'}
      idleTimeBetweenReadsInMillis: 200
      shardDiscoveryIntervalInSeconds: 1
    s3Destination:
      bucket: ${o.bucket}
      prefix: "${o.prefix ?? `${o.deliveryStreamName}/`}"
      errorOutputPrefix: "${o.errorOutputPrefix ?? `${o.deliveryStreamName}-errors/`}"
      bufferingHints: { sizeInMBs: ${o.sizeInMBs ?? 1}, intervalInSeconds: ${o.intervalInSeconds ?? 60} }
      compressionFormat: ${o.compressionFormat ?? 'GZIP'}
      appendNewlineDelimiter: ${o.appendNewlineDelimiter ?? false}
      endpoint: ${peers.s3.endpoint}
${o.s3Extra ?? ''}`;
}

export function serviceYaml(peers: Pick<Peers, 'redis' | 'kinesis' | 's3'>, streams: StreamYamlOptions[]): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30, leaseDurationInSeconds: 2 }
deliveryStreams:
${streams.map((s) => streamYaml(peers, s)).join('')}`;
}

export interface StoredObject {
  key: string;
  /** The object's bytes, gunzipped when the key ends in .gz. */
  body: Buffer;
}

export async function readObjects(s3: S3Client, bucket: string, prefix: string): Promise<StoredObject[]> {
  const listing = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  // s3rver fails paginated listings without --openssl-legacy-provider: keep tests under one page.
  if (listing.IsTruncated) throw new Error('more objects than one listing page; make the test smaller');
  const out: StoredObject[] = [];
  for (const { Key } of listing.Contents ?? []) {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: Key! }));
    const raw = Buffer.from(await object.Body!.transformToByteArray());
    out.push({ key: Key!, body: Key!.endsWith('.gz') ? gunzipSync(raw) : raw });
  }
  return out;
}

/** The checkpoints of a delivery stream's one source, as stored in Redis. */
export async function checkpoints(redis: Redis, deliveryStreamName: string): Promise<Record<string, string>> {
  const bySource = Object.values(await storedCheckpoints(redis, deliveryStreamName));
  if (bySource.length > 1) throw new Error(`${deliveryStreamName} has checkpoints of ${bySource.length} sources`);
  return bySource[0] ?? {};
}

/** Byte strings as a multiset: content digest → count. */
export function multiset(records: Iterable<Uint8Array>): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) {
    const digest = createHash('sha1').update(r).digest('base64');
    out.set(digest, (out.get(digest) ?? 0) + 1);
  }
  return out;
}

/**
 * Test records frame themselves — `<8 hex digits of length>:` then any bytes (binary, newlines) —
 * so the byte stream of concatenated records can be cut back into records. The pipeline sees
 * opaque bytes.
 */
export function framedRecord(payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(payload.length.toString(16).padStart(8, '0') + ':'), payload]);
}

export function splitFramed(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const header = stream.subarray(at, at + 9).toString('latin1');
    if (!/^[0-9a-f]{8}:$/.test(header)) throw new Error(`bad frame at byte ${at}: ${JSON.stringify(header)}`);
    const length = parseInt(header.slice(0, 8), 16);
    const end = at + 9 + length;
    if (end > stream.length) throw new Error(`frame at byte ${at} runs past the end (${end} > ${stream.length})`);
    out.push(stream.subarray(at, end));
    at = end;
  }
  return out;
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The last sequence number per shard, from PutRecords results. */
export class SequenceTracker {
  readonly lastByShard = new Map<string, string>();
  note(shardId: string, sequenceNumber: string): void {
    const current = this.lastByShard.get(shardId);
    if (!current || compareSequence(sequenceNumber, current) > 0) this.lastByShard.set(shardId, sequenceNumber);
  }
}

export function compareSequence(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}
