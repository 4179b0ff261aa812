import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { DeadLetterQueue, dlqConnection } from '../src/dlq.js';
import type { SourceRecord } from '../src/records.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { createStream, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'admin';
const TOKEN = 'test-admin-token-0123456789';

/** The admin endpoint can purge data: it answers only with its token, only same-origin changes, only for its own host. */
describe('admin endpoint safety', () => {
  const peers = suitePeers([BUCKET], { redisAppendOnly: true });

  async function start(token: string | undefined) {
    await createStream(peers.kinesisClient, 'guarded', 1).catch(() => undefined);
    return startService(
      parseConfig(`
redis: { url: "${peers.redis.url}" }
runtime:
  checkpointIntervalInMillis: 200
  deadLetterQueue: { enabled: true }
  admin: { enabled: true, port: 0${token ? `, token: "${token}"` : ''} }
deliveryStreams:
  - deliveryStreamName: guarded
    kinesisStreamSource: { streamName: guarded, endpoint: "${peers.kinesis.endpoint}" }
    s3Destination: { bucket: ${BUCKET}, endpoint: "${peers.s3.endpoint}" }
`),
      { log: silentLogger },
    );
  }

  it('with a token: every route but /healthz and /readyz answers 401 without it; cross-origin changes, foreign hosts and repeated parameters are refused', async () => {
    const service = await start(TOKEN);
    const admin = service.adminUrl!;
    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      for (const [method, path] of [['GET', '/health'], ['GET', '/stats'], ['GET', '/metrics'], ['GET', '/dlq'], ['GET', '/admin/queues'], ['POST', '/dlq/redrive'], ['DELETE', '/dlq']] as const) {
        expect((await fetch(`${admin}${path}`, { method })).status, `${method} ${path}`).toBe(401);
        expect((await fetch(`${admin}${path}`, { method, headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, `${method} ${path}`).toBe(401);
      }
      expect((await fetch(`${admin}/healthz`)).status).toBe(200);
      expect((await fetch(`${admin}/readyz`)).status).toBe(200);
      expect((await fetch(`${admin}/stats`, { headers: auth })).status).toBe(200);
      // A page elsewhere posting a simple (text/plain) form, or deleting: refused even with the token.
      const post = await fetch(`${admin}/dlq/redrive`, { method: 'POST', headers: { ...auth, origin: 'http://evil.example', 'content-type': 'text/plain' }, body: 'x' });
      expect(post.status).toBe(403);
      expect((await fetch(`${admin}/dlq?stream=guarded`, { method: 'DELETE', headers: { ...auth, origin: 'http://evil.example' } })).status).toBe(403);
      expect((await fetch(`${admin}/dlq?stream=guarded&stream=other`, { method: 'DELETE', headers: auth })).status).toBe(400);
      expect((await fetch(`${admin}/dlq?stream=guarded`, { method: 'DELETE', headers: auth })).status).toBe(200);
    } finally {
      await service.stop();
    }
  });

  it('refuses a request for another host name (DNS rebinding)', async () => {
    const service = await start(undefined);
    try {
      const { port } = new URL(service.adminUrl!);
      // fetch will not send a forged Host header: speak HTTP directly.
      const { request } = await import('node:http');
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/stats', headers: { host: `rebound.example:${port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(421);
      expect((await fetch(`${service.adminUrl}/stats`)).status).toBe(200);
    } finally {
      await service.stop();
    }
  });

  it('/readyz answers 503 within 5 s of Redis stopping, and 200 once it is back', async () => {
    const service = await start(undefined);
    const ready = async () => (await fetch(`${service.adminUrl}/readyz`)).status;
    try {
      expect(await ready()).toBe(200);
      const restarted = peers.redis.restart(8_000);
      const stoppedAt = Date.now();
      await waitFor(async () => (await ready()) === 503, 5_000, '/readyz to answer 503');
      expect(Date.now() - stoppedAt).toBeLessThan(5_000);
      const health = await fetch(`${service.adminUrl}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: 'degraded', deliveryStreams: ['guarded'] });
      // The DLQ's routes say so too, within 5 s, instead of hanging on Redis.
      const asked = Date.now();
      expect((await fetch(`${service.adminUrl}/dlq`)).status).toBe(503);
      expect(Date.now() - asked).toBeLessThan(5_000);
      await restarted;
      await waitFor(async () => (await ready()) === 200, 15_000, '/readyz to answer 200 again');
    } finally {
      await service.stop();
    }
  });

  it('/readyz names the source and the destination that do not answer, and turns 200 once they do', async () => {
    // A port nothing listens on yet: the HTTP endpoint comes up later.
    const { createServer } = await import('node:http');
    const endpoint = createServer((req, res) => res.writeHead(req.method === 'HEAD' ? 405 : 200).end());
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const { port } = endpoint.address() as { port: number };
    await new Promise((resolve) => endpoint.close(resolve));
    await createStream(peers.kinesisClient, 'early-http', 1);
    const service = await startService(
      parseConfig(`
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, admin: { enabled: true, port: 0 } }
deliveryStreams:
  - deliveryStreamName: early
    kinesisStreamSource: { streamName: not-yet, endpoint: "${peers.kinesis.endpoint}", shardDiscoveryIntervalInSeconds: 1 }
    s3Destination: { bucket: not-yet-made, endpoint: "${peers.s3.endpoint}" }
  - deliveryStreamName: early-http
    kinesisStreamSource: { streamName: early-http, endpoint: "${peers.kinesis.endpoint}" }
    httpEndpointDestination:
      endpointConfiguration: { url: "http://127.0.0.1:${port}/ingest" }
      s3Configuration: { bucket: ${BUCKET}, endpoint: "${peers.s3.endpoint}" }
`),
      { log: silentLogger },
    );
    const readiness = async () => {
      const res = await fetch(`${service.adminUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as { status: string; problems?: string[] } };
    };
    try {
      const before = await readiness();
      expect(before.status).toBe(503);
      expect(before.body.problems).toEqual([
        expect.stringMatching(/^early: source: .*not-yet/),
        expect.stringMatching(/^early: destination: S3 bucket "not-yet-made": HeadBucket answered 404/),
        `early-http: destination: HTTP endpoint http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
      ]);
      await new Promise<void>((resolve) => endpoint.listen(port, '127.0.0.1', resolve)); // a 405 to HEAD is an answer
      await createStream(peers.kinesisClient, 'not-yet', 1);
      await peers.s3Client.send(new CreateBucketCommand({ Bucket: 'not-yet-made' }));
      await waitFor(async () => (await readiness()).status === 200, 10_000, '/readyz to answer 200 once both exist');
      expect((await readiness()).body).toEqual({ status: 'ready' });
    } finally {
      endpoint.close();
      await service.stop();
    }
  });

  it('/dlq streams a large queue a page at a time, and pages through it with limit and after', async () => {
    const service = await start(TOKEN);
    const redis = dlqConnection({ url: peers.redis.url });
    const queue = new DeadLetterQueue(redis, 'guarded', 64 * 1024 * 1024);
    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      const letters = Array.from({ length: 1_500 }, (_, i) =>
        DeadLetterQueue.letter({ shardId: 'shardId-000000000000', sequenceNumber: String(10_000 + i), subSequenceNumber: 0, partitionKey: 'k', approximateArrivalTimestamp: 1, data: Buffer.alloc(4_096, i % 251) } as unknown as SourceRecord, 'guarded', 's3Destination', {
          errorOutputType: 'processing-failed',
          errorCode: 'Lambda.ProcessingFailed',
          errorMessage: 'failed on purpose',
          attemptsMade: 1,
          lastAttemptAt: 2,
        }),
      );
      expect((await queue.park(letters)).parked).toBe(1_500);
      const whole = await fetch(`${service.adminUrl}/dlq?stream=guarded&data=1`, { headers: auth });
      expect(whole.headers.get('transfer-encoding')).toBe('chunked'); // written as it is read, not built whole
      const all = ((await whole.json()) as Record<string, Array<{ id: string; data: string; bytes: number }>>).guarded!;
      expect(all).toHaveLength(1_500);
      expect(all.every((e) => e.bytes === 4_096 && Buffer.from(e.data, 'base64').length === 4_096)).toBe(true);
      // Paged: 400 at a time, each page starting after the last id of the one before, covers it exactly once.
      const paged: string[] = [];
      for (let after: string | undefined; ; ) {
        const page = ((await (await fetch(`${service.adminUrl}/dlq?stream=guarded&limit=400${after ? `&after=${encodeURIComponent(after)}` : ''}`, { headers: auth })).json()) as Record<string, Array<{ id: string }>>).guarded!;
        paged.push(...page.map((e) => e.id));
        if (page.length < 400) break;
        after = page.at(-1)!.id;
      }
      expect(paged).toEqual(all.map((e) => e.id));
      expect((await fetch(`${service.adminUrl}/dlq?limit=0`, { headers: auth })).status).toBe(400);
      // Bull Board cannot empty or clean the queue behind the byte counter's back: it is read-only there.
      const sizeBefore = await queue.size();
      for (const path of ['guarded%3Adlq/empty', 'guarded%3Adlq/clean/failed', 'guarded%3Adlq/clean/completed']) {
        expect((await fetch(`${service.adminUrl}/admin/queues/api/queues/${path}`, { method: 'PUT', headers: auth })).status, path).toBe(405);
      }
      expect(await queue.size()).toEqual(sizeBefore);
      // …and the DLQ goes on taking entries.
      expect((await queue.park([{ ...letters[0]!, sequenceNumber: '99999' }])).parked).toBe(1);
      expect((await queue.size()).entries).toBe(1_501);
      expect(await (await fetch(`${service.adminUrl}/dlq?stream=guarded`, { method: 'DELETE', headers: auth })).json()).toEqual({ guarded: { purged: 1_501 } });
      expect(await queue.size()).toEqual({ entries: 0, bytes: 0 });
    } finally {
      await queue.close();
      redis.disconnect();
      await service.stop();
    }
  });
});
