import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../destinations/s3/index.js';
import { s3DestinationSchema } from '../destinations/s3/config.js';
import { uploadChunks } from '../destinations/s3/upload.js';
import { localAwsEnvironment, startS3rver, type S3Server } from '../src/dev/peers.js';

Object.assign(process.env, localAwsEnvironment());

const MiB = 1024 * 1024;
const BUCKET = 'uploads';

/**
 * In front of s3rver: answers 503 SlowDown to the requests `fail` picks (by method and URL), and
 * notes every request it sees.
 */
async function faultyProxy(target: string, fail: (method: string, url: string, seen: number) => boolean) {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    seen.push(line);
    if (fail(req.method!, req.url!, seen.filter((s) => s === line).length)) {
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      });
      return;
    }
    const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An object as an encoder holds it: chunks of uneven sizes, none aligned to a part. */
function chunked(bytes: number): { chunks: Buffer[]; bytes: number; whole: Buffer } {
  const whole = randomBytes(bytes);
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes; i++) {
    const size = Math.min(bytes - at, [1, 700_000, 1_300_001, 333][i % 4]!);
    chunks.push(whole.subarray(at, at + size));
    at += size;
  }
  return { chunks, bytes, whole };
}

async function stored(client: S3Client, key: string): Promise<Buffer> {
  const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

describe('S3 uploads from an encoder\'s chunks', () => {
  let s3: S3Server;
  let client: S3Client;
  const clientFor = (endpoint: string) => createS3Client(s3DestinationSchema.parse({ bucket: BUCKET, endpoint }));

  beforeAll(async () => {
    s3 = await startS3rver([BUCKET]);
    client = clientFor(s3.endpoint);
  });
  afterAll(async () => {
    client.destroy();
    await s3.stop();
  });

  it('writes objects below, at and above the part size byte for byte, in parts above it', async () => {
    const proxy = await faultyProxy(s3.endpoint, () => false);
    const through = clientFor(proxy.endpoint);
    try {
      for (const [name, bytes] of [['small', 1_000], ['one-part', 5 * MiB], ['three-parts', 12 * MiB + 17]] as const) {
        const object = chunked(bytes);
        await uploadChunks(through, { Bucket: BUCKET, Key: name, ContentType: 'application/octet-stream' }, object, 5 * MiB, new AbortController().signal);
        expect((await stored(client, name)).equals(object.whole)).toBe(true);
      }
      const parts = proxy.seen.filter((line) => line.startsWith('PUT /uploads/three-parts?') && line.includes('partNumber='));
      expect(parts).toHaveLength(3);
      expect(proxy.seen.filter((line) => line.startsWith('PUT /uploads/one-part') || line.startsWith('PUT /uploads/small'))).toEqual(['PUT /uploads/small?x-id=PutObject', 'PUT /uploads/one-part?x-id=PutObject']);
    } finally {
      through.destroy();
      await proxy.close();
    }
  });

  it('sends a part again, from its chunks, when S3 answers SlowDown to it', async () => {
    const proxy = await faultyProxy(s3.endpoint, (method, url, seen) => method === 'PUT' && url.includes('partNumber=2') && seen === 1);
    const through = clientFor(proxy.endpoint);
    try {
      const object = chunked(11 * MiB);
      await uploadChunks(through, { Bucket: BUCKET, Key: 'retried', ContentType: 'application/octet-stream' }, object, 5 * MiB, new AbortController().signal);
      expect(proxy.seen.filter((line) => line.includes('partNumber=2'))).toHaveLength(2);
      expect((await stored(client, 'retried')).equals(object.whole)).toBe(true);
    } finally {
      through.destroy();
      await proxy.close();
    }
  });

  it('s3rver as the suites and the benchmark start it: kept over a restart when asked, its directory removed when it stops', async () => {
    const first = await startS3rver([BUCKET]);
    const write = clientFor(first.endpoint);
    const object = chunked(1_000);
    await uploadChunks(write, { Bucket: BUCKET, Key: 'kept', ContentType: 'application/octet-stream' }, object, 5 * MiB, new AbortController().signal);
    write.destroy();
    await first.stop({ keepDirectory: true });
    expect(existsSync(first.directory)).toBe(true);
    const again = await startS3rver([BUCKET], { directory: first.directory });
    const read = clientFor(again.endpoint);
    try {
      const object2 = await read.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'kept' }));
      expect(Buffer.from(await object2.Body!.transformToByteArray()).equals(object.whole)).toBe(true);
    } finally {
      read.destroy();
      await again.stop();
    }
    expect(existsSync(first.directory)).toBe(false);
  });

  it('aborts the upload when a part keeps failing: the error is S3\'s, the upload is aborted, no object is left', async () => {
    const proxy = await faultyProxy(s3.endpoint, (method, url) => method === 'PUT' && url.includes('partNumber=3'));
    const through = clientFor(proxy.endpoint);
    try {
      const object = chunked(16 * MiB);
      await expect(uploadChunks(through, { Bucket: BUCKET, Key: 'failed', ContentType: 'application/octet-stream' }, object, 5 * MiB, new AbortController().signal)).rejects.toMatchObject({ name: 'SlowDown' });
      expect(proxy.seen.filter((line) => line.includes('partNumber=3'))).toHaveLength(3);
      // AbortMultipartUpload is sent (s3rver answers it 405: it does not implement it).
      expect(proxy.seen.filter((line) => line.startsWith('DELETE /uploads/failed?uploadId='))).toHaveLength(1);
      expect(proxy.seen.some((line) => line.startsWith('POST /uploads/failed?uploadId='))).toBe(false); // never completed
      await expect(stored(client, 'failed')).rejects.toMatchObject({ name: 'NoSuchKey' });
    } finally {
      through.destroy();
      await proxy.close();
    }
  });
});
