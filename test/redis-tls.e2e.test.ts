import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';
import { createStream, putAll, streamYaml, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'tls-bucket';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A CA and a server certificate for 127.0.0.1 it signed, made by openssl as an operator would. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=firehose test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost" > san.ext'], { cwd: dir });
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

describe('Redis over TLS (rediss:// with redis.tls)', () => {
  const peers = suitePeers([BUCKET]);
  let redis: ChildProcess;
  let port: number;
  let certs: { ca: string; cert: string; key: string };
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'firehose-tls-'));
    certs = makeCertificates(dir);
    port = await freePort();
    redis = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const client = new Redis(`rediss://127.0.0.1:${port}`, { tls: { ca: readFileSync(certs.ca) }, maxRetriesPerRequest: 1, lazyConnect: true });
    client.on('error', () => undefined);
    await waitFor(async () => (await client.ping().catch(() => '')) === 'PONG', 10_000, 'redis-server with TLS');
    client.disconnect();
  });
  afterAll(() => {
    redis?.kill('SIGKILL');
  });

  async function config(tls: string): Promise<string> {
    const path = join(dir, `streams-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(path, `
redis:
  url: "rediss://127.0.0.1:${port}"
${tls}
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30, leaseDurationInSeconds: 2 }
deliveryStreams:
${streamYaml(peers, { deliveryStreamName: 'secure', streamName: 'secure', bucket: BUCKET })}`);
    return path;
  }

  it('with the CA in redis.tls.caFile, `firehose run` checkpoints over TLS and `firehose leases` reads them', async () => {
    await createStream(peers.kinesisClient, 'secure', 1);
    const path = await config(`  tls: { caFile: "${certs.ca}" }`);
    const results = await putAll(peers.kinesisClient, 'secure', Array.from({ length: 100 }, (_, i) => ({ data: Buffer.from(`secure ${i}`), partitionKey: `k${i}` })));
    const running = firehose(['run', '--config', path], { FIREHOSE_LOG_LEVEL: 'warn' });
    const client = new Redis(`rediss://127.0.0.1:${port}`, { tls: { ca: readFileSync(certs.ca) } });
    try {
      await waitFor(async () => (await client.hlen('{fh:secure}:leases:kinesis/us-east-1/secure')) === 1, 20_000, 'the lease taken over TLS');
      await new Promise((r) => setTimeout(r, 1_000));
      running.child.kill('SIGTERM');
      expect((await running.exited).code).toBe(0);
      expect(await client.hget('{fh:secure}:checkpoints:kinesis/us-east-1/secure', 'shardId-000000000000')).toBe(results.at(-1)!.sequenceNumber);
      const leases = firehose(['leases', '--config', path, '--json']);
      expect((await leases.exited).code).toBe(0);
      expect(JSON.parse(leases.stdout())).toMatchObject([{ deliveryStream: 'secure', shardId: 'shardId-000000000000', owner: null, state: 'open' }]);
    } finally {
      running.child.kill('SIGKILL');
      client.disconnect();
    }
  });

  it('without the CA, the handshake failure is logged at error level with its cause', async () => {
    const path = await config('');
    const running = firehose(['run', '--config', path], { FIREHOSE_LOG_LEVEL: 'warn' });
    try {
      await waitFor(() => /"level":"error".*Redis TLS handshake failed/.test(running.stderr()), 20_000, 'the TLS error logged');
      expect(running.stderr()).toMatch(/self.signed|SELF_SIGNED|unable to verify/i);
    } finally {
      running.child.kill('SIGKILL');
      await running.exited;
    }
  });

  it('validate refuses redis.tls files that do not exist and tls with a redis:// url', async () => {
    const missing = await config('  tls: { caFile: "/nonexistent/ca.pem" }');
    const check = firehose(['validate', '--config', missing]);
    expect((await check.exited).code).toBe(2);
    expect(check.stderr()).toContain('redis.tls.caFile: no such file');
    const plain = join(dir, 'plain.yaml');
    await writeFile(plain, readFileSync(missing, 'utf8').replace(`rediss://127.0.0.1:${port}`, 'redis://127.0.0.1:6379').replace('/nonexistent/ca.pem', certs.ca));
    const plainCheck = firehose(['validate', '--config', plain]);
    expect((await plainCheck.exited).code).toBe(2);
    expect(plainCheck.stderr()).toContain('redis.tls: is used only with a rediss:// url');
  });
});
