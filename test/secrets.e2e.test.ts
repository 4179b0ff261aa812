import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBulkServer } from './helpers/bulk-server.js';
import { firehose } from './helpers/cli.js';
import { startReceiver } from './helpers/http-receiver.js';
import { createStream, putAll, suitePeers, waitFor, type Peers } from './helpers/harness.js';

const BUCKET = 'secrets-backup';
const SECRETS = {
  redisPassword: 'hunter2-redis-password',
  adminToken: 'admin-token-SECRET-0123456789',
  apiKey: 'SECRET-API-KEY-123',
  accessKey: 'SECRET-ACCESS-KEY-456',
  openSearchPassword: 'SECRET-OS-PASSWORD-789',
  urlPassword: 'SECRET-URL-PASS-000',
  urlToken: 'SECRET-TOKEN-111',
};
const arn = (name: string) => `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`;

function goodYaml(peers: Peers, endpoint: string, cluster: string): string {
  const redis = new URL(peers.redis.url);
  return `
redis: { url: "redis://:${SECRETS.redisPassword}@${redis.host}" }
runtime:
  checkpointIntervalInMillis: 200
  deadLetterQueue: { enabled: true }
  admin: { enabled: true, port: 0, token: "\${FIREHOSE_ADMIN_TOKEN}" }
deliveryStreams:
  - deliveryStreamName: to-endpoint
    kinesisStreamSource: { streamName: secret-http, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    httpEndpointDestination:
      endpointConfiguration: { url: "${endpoint}/ingest?api_key=${SECRETS.apiKey}", accessKey: "${SECRETS.accessKey}" }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 0 }
      s3Configuration: { bucket: ${BUCKET}, endpoint: "${peers.s3.endpoint}" }
  - deliveryStreamName: to-search
    kinesisStreamSource: { streamName: secret-os, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "${cluster}"
      indexName: docs
      basicAuth: { username: firehose, password: "${SECRETS.openSearchPassword}" }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      s3Configuration: { bucket: ${BUCKET}, endpoint: "${peers.s3.endpoint}" }
`;
}

/** Secrets in places a validation message would echo them. */
const badYaml = `
redis: { url: "http://:${SECRETS.redisPassword}@127.0.0.1:6379" }
deliveryStreams:
  - deliveryStreamName: bad
    kinesisStreamSource: { streamName: s }
    httpEndpointDestination:
      endpointConfiguration: { url: "ftp://user:${SECRETS.urlPassword}@example.com/?token=${SECRETS.urlToken}", accessKey: "${SECRETS.accessKey}" }
      s3Configuration: { bucket: ${BUCKET} }
  - deliveryStreamName: bad-search
    kinesisStreamSource: { streamName: s }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "http://127.0.0.1:9200"
      indexName: docs
      basicAuth: { username: firehose, password: ["${SECRETS.openSearchPassword}"] }
      s3Configuration: { bucket: ${BUCKET} }
`;

describe('secrets never leave the process', () => {
  const peers = suitePeers([BUCKET]);

  it('configured everywhere, run, failed, listed: no secret in logs, validate output, /stats, /metrics, /dlq, Bull Board or the CLI', async () => {
    // The endpoint refuses everything and echoes what it was sent in its error message, as real ones do.
    const receiver = await startReceiver({
      accessKey: SECRETS.accessKey,
      sourceArn: arn('to-endpoint'),
      reply: (_n, requestId) => ({ status: 400, body: { requestId, timestamp: Date.now(), errorMessage: `key ${SECRETS.accessKey} is not allowed on /ingest?api_key=${SECRETS.apiKey}` } }),
    });
    const cluster = await startBulkServer(() => 201);
    const dir = await mkdtemp(join(tmpdir(), 'firehose-secrets-'));
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    await writeFile(good, goodYaml(peers, receiver.url, cluster.url.replace('http://', `http://firehose:${SECRETS.openSearchPassword}@`)));
    await writeFile(bad, badYaml);
    const env = { FIREHOSE_ADMIN_TOKEN: SECRETS.adminToken, FIREHOSE_LOG_LEVEL: 'debug', FIREHOSE_LOG_FORMAT: 'json' };
    const seen: Array<[string, string]> = [];
    const outputOf = async (what: string, args: string[]) => {
      const cli = firehose(args, env);
      const { code } = await cli.exited;
      seen.push([what, cli.stdout() + cli.stderr()]);
      return { code, out: cli.stdout() + cli.stderr() };
    };

    const invalid = await outputOf('validate (invalid)', ['validate', '--config', bad]);
    expect(invalid.code).toBe(2);
    // The messages still say what is wrong and where.
    expect(invalid.out).toContain('redis.url: must be a redis:// or rediss:// URL');
    expect(invalid.out).toContain('endpointConfiguration.url');
    expect(invalid.out).toContain('basicAuth.password: expected string, got array');
    expect((await outputOf('validate', ['validate', '--config', good])).code).toBe(0);

    await createStream(peers.kinesisClient, 'secret-http', 1);
    await createStream(peers.kinesisClient, 'secret-os', 1);
    // First run: the records flow; at shutdown the endpoint's refusals park its 50 in the DLQ.
    const first = firehose(['run', '--config', good], env);
    await waitFor(() => /admin endpoint listening/.test(first.stderr()), 20_000, 'the first run to start');
    const records = Array.from({ length: 50 }, (_, i) => ({ data: Buffer.from(JSON.stringify({ i, note: 'ordinary data' })), partitionKey: `k${i}` }));
    await putAll(peers.kinesisClient, 'secret-http', records);
    await putAll(peers.kinesisClient, 'secret-os', records);
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // read, then buffered
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    seen.push(['firehose run (first)', first.stdout() + first.stderr()]);
    expect(cluster.indexed.size).toBe(50);
    // The log says each object once, at info: where, how many records, bytes, how long.
    expect(first.stderr()).toMatch(/"level":"info".*"deliveryStream":"to-search","location":"http:\/\/firehose:\[redacted\]@127\.0\.0\.1:\d+\/_bulk.*"records":50,"rawBytes":\d+.*"durationMs":\d+.*"msg":"delivered"/);

    // Second run: every route an operator reads, while the DLQ holds the 50 letters.
    const second = firehose(['run', '--config', good], env);
    try {
      await waitFor(() => /admin endpoint listening/.test(second.stderr()), 20_000, 'the second run to start');
      const admin = /"url":"(http:\/\/[^"]+)"/.exec(second.stderr().split('\n').find((l) => l.includes('admin endpoint listening'))!)![1]!;
      const get = async (path: string) => {
        const res = await fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${SECRETS.adminToken}` } });
        const body = await res.text();
        seen.push([`GET ${path}`, body]);
        return { status: res.status, body };
      };
      const dlq = await get('/dlq?stream=to-endpoint&data=1');
      expect(dlq.status).toBe(200);
      const letters = (JSON.parse(dlq.body) as Record<string, Array<{ errorMessage: string }>>)['to-endpoint']!;
      expect(letters).toHaveLength(50);
      // The endpoint's message is kept, its secrets are not.
      expect(letters[0]!.errorMessage).toContain('key [redacted] is not allowed on /ingest?api_key=[redacted]');
      for (const path of ['/', '/stats', '/metrics', '/health', '/readyz', '/leases', '/admin/queues/api/queues?activeQueue=to-endpoint%3Adlq&status=latest&page=1&jobsPerPage=100', '/admin/queues']) {
        expect((await get(path)).status, path).toBe(200);
      }
      // Bull Board lists each stream's queue under its own name, and the letters in it.
      const board = JSON.parse(seen.find(([what]) => what.startsWith('GET /admin/queues/api'))![1]) as { queues: Array<{ name: string; jobs: Array<{ data: { errorMessage: string } }> }> };
      expect(board.queues.map((q) => q.name).sort()).toEqual(['to-endpoint:dlq', 'to-search:dlq']);
      const shown = board.queues.find((q) => q.name === 'to-endpoint:dlq')!.jobs;
      expect(shown.length).toBeGreaterThan(0);
      expect(shown[0]!.data.errorMessage).toContain('key [redacted] is not allowed');
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    } finally {
      second.child.kill('SIGKILL');
    }
    seen.push(['firehose run (second)', second.stdout() + second.stderr()]);
    const listed = await outputOf('dlq list', ['dlq', 'list', '--config', good, '--stream', 'to-endpoint']);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain('[redacted]');

    for (const [what, text] of seen) {
      for (const [name, secret] of Object.entries(SECRETS)) expect(text, `${name} in ${what}`).not.toContain(secret);
    }
    await receiver.stop();
    await cluster.stop();
  }, 120_000);
});
