import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../src/config.js';
import { firehose } from './helpers/cli.js';
import { readObjects, suitePeers, waitFor } from './helpers/harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMPOSE = resolve(ROOT, 'config/docker-compose.yml');

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
}

/** Compose's own interpolation of the file's `${VAR:-default}`: what `docker compose config` would give with nothing set. */
const withDefaults = (value: string) => value.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, _name: string, fallback: string | undefined) => fallback ?? '');

/**
 * No Docker engine runs on these machines: the compose file and the Dockerfile are checked as
 * files, and what they run is run here (the config validated, the producer's command against kinesalite).
 */
describe('config/docker-compose.yml and the Dockerfile', () => {
  const compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const services = compose.services;
  const peers = suitePeers(['firehose-archive']);

  it('runs a stream source, an S3-compatible store, Redis with AOF, a producer and firehose; every image is named with a tag', () => {
    expect(Object.keys(services).sort()).toEqual(['firehose', 'kinesis', 'producer', 'redis', 's3', 's3-init']);
    for (const [name, service] of Object.entries(services)) {
      if (service.build !== undefined) {
        expect(resolve(dirname(COMPOSE), service.build), name).toBe(resolve(ROOT));
        expect(existsSync(resolve(ROOT, 'Dockerfile'))).toBe(true);
      } else {
        expect(service.image, `${name} needs an image`).toMatch(/^[a-z0-9./-]+:[\w.-]+$/);
      }
    }
    expect(services.redis!.command).toEqual(['redis-server', '--appendonly', 'yes']);
    expect(services.kinesis!.image).toMatch(/^localstack\/localstack:/);
    expect(services.s3!.image).toMatch(/^minio\/minio:/);
    // Named volumes are declared; bind mounts name files that exist.
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.') || source.startsWith('/')) expect(existsSync(resolve(dirname(COMPOSE), source)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: volume ${source}`).toHaveProperty(source);
      }
    }
  });

  it('starts firehose once Redis and the stream source are healthy and the bucket is made; the mounted config validates and points at them', () => {
    const service = services.firehose!;
    expect(service.depends_on).toEqual({ redis: { condition: 'service_healthy' }, kinesis: { condition: 'service_healthy' }, 's3-init': { condition: 'service_completed_successfully' } });
    const mount = service.volumes!.find((v) => v.endsWith(':/etc/firehose/streams.yaml:ro'))!;
    const env = Object.fromEntries(Object.entries(service.environment!).map(([k, v]) => [k, withDefaults(String(v))]));
    const config = parseConfig(readFileSync(resolve(dirname(COMPOSE), mount.split(':')[0]!), 'utf8'), env);
    expect(config.redis.url).toBe('redis://redis:6379');
    const stream = config.deliveryStreams[0]!;
    const source = stream.source.config as { streamName: string; endpoint: string };
    const destination = stream.destination.config as { bucket: string; endpoint: string };
    expect(source.endpoint).toBe('http://kinesis:4566');
    expect(destination.endpoint).toBe('http://s3:9000');
    // The producer fills the stream the config reads; s3-init makes the bucket it writes.
    expect(services.producer!.command).toEqual(expect.arrayContaining(['--stream', source.streamName, '--endpoint', 'http://kinesis:4566']));
    expect(services['s3-init']!.command!.join(' ')).toContain(`mc mb --ignore-existing local/${destination.bucket}`);
    // Both speak to S3 with MinIO's root credentials.
    expect(env.AWS_ACCESS_KEY_ID).toBe(withDefaults(String(services.s3!.environment!.MINIO_ROOT_USER)));
    expect(env.AWS_SECRET_ACCESS_KEY).toBe(withDefaults(String(services.s3!.environment!.MINIO_ROOT_PASSWORD)));
    // The image's healthcheck asks this config's admin port.
    expect(config.runtime.admin).toMatchObject({ enabled: true, host: '0.0.0.0', port: 8088 });
  });

  it('has a multi-stage Dockerfile on Node 22 slim: non-root, SIGTERM, a /readyz healthcheck, the glibc mmap threshold fixed, no dev dependencies, no dist/bench', () => {
    const dockerfile = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
    const froms = dockerfile.match(/^FROM .*$/gm)!;
    expect(froms).toHaveLength(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:22-[\w-]*slim/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/readyz/m);
    expect(dockerfile).toContain('npm prune --omit=dev');
    // glibc's mmap threshold fixed, so freed large buffers leave RSS (README: Memory and how to size it).
    expect(dockerfile).toMatch(/^ENV .*\bMALLOC_MMAP_THRESHOLD_=131072\b/m);
    expect(dockerfile).toContain('rm -rf dist/bench dist/chaos');
    // Every path the build copies exists.
    for (const [, from] of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) expect(existsSync(resolve(ROOT, from!)), from).toBe(true);
    const ignored = readFileSync(resolve(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist']));
  });

  it("the producer's command, run here against kinesalite, makes the stream and fills it until SIGTERM", async () => {
    const args = services.producer!.command!.map((a) => (a === 'http://kinesis:4566' ? peers.kinesis.endpoint : a === 'clicks' ? 'compose-clicks' : a));
    const producer = firehose(args, { AWS_REGION: 'us-east-1' });
    try {
      await waitFor(() => /producing ~200 records\/s/.test(producer.stdout()), 20_000, 'the producer to start');
      await new Promise((r) => setTimeout(r, 1_500));
    } finally {
      producer.child.kill('SIGTERM');
    }
    expect((await producer.exited).code).toBe(0);
    expect(producer.stdout()).toContain('created stream "compose-clicks" with 2 shard(s)');
    const produced = Number(/produced (\d+) records/.exec(producer.stdout())![1]);
    expect(produced).toBeGreaterThan(100);
    const summary = await peers.kinesisClient.send(new DescribeStreamSummaryCommand({ StreamName: 'compose-clicks' }));
    expect(summary.StreamDescriptionSummary!.OpenShardCount).toBe(2);
    let read = 0;
    for (const shard of (await peers.kinesisClient.send(new ListShardsCommand({ StreamName: 'compose-clicks' }))).Shards!) {
      const { ShardIterator } = await peers.kinesisClient.send(new GetShardIteratorCommand({ StreamName: 'compose-clicks', ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
      const records = (await peers.kinesisClient.send(new GetRecordsCommand({ ShardIterator: ShardIterator! }))).Records!;
      for (const r of records) expect(() => JSON.parse(Buffer.from(r.Data!).toString('utf8'))).not.toThrow();
      read += records.length;
    }
    expect(read).toBe(produced);
  });

  it('what `docker compose up` runs, run here on the suite\'s peers: the producer fills "clicks", firehose lands GZIP objects in the bucket', async () => {
    const args = services.producer!.command!.map((a) => (a === 'http://kinesis:4566' ? peers.kinesis.endpoint : a === '200' ? '3000' : a));
    const producer = firehose(args, { AWS_REGION: 'us-east-1' });
    const env = { REDIS_URL: peers.redis.url, KINESIS_ENDPOINT: peers.kinesis.endpoint, S3_ENDPOINT: peers.s3.endpoint, FIREHOSE_ADMIN_TOKEN: 'compose-test-admin-token-0123', FIREHOSE_ADMIN_PORT: '0' };
    const service = firehose(['run', '--config', resolve(ROOT, 'config/compose-streams.yaml')], env);
    try {
      await waitFor(() => /"msg":"delivered"/.test(service.stderr()), 60_000, 'a first object (5 MB at ~3 MB/s)');
      producer.child.kill('SIGTERM');
      await producer.exited;
      // Stopped once it has read all there is: then every record put is in the bucket.
      const admin = /"url":"(http:\/\/[^"]+)","msg":"admin endpoint listening"/.exec(service.stderr())![1]!;
      const produced = Number(/produced (\d+) records/.exec(producer.stdout())![1]);
      const read = async () => Number(/^firehose_incoming_records_total\{delivery_stream="clicks"\} (\d+)$/m.exec(await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${env.FIREHOSE_ADMIN_TOKEN}` } })).text())?.[1]);
      await waitFor(async () => (await read()) === produced, 30_000, 'firehose to read every record produced');
    } finally {
      producer.child.kill('SIGTERM');
      service.child.kill('SIGTERM');
    }
    expect((await service.exited).code).toBe(0);
    const objects = await readObjects(peers.s3Client, 'firehose-archive', 'clicks/');
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) expect(o.key).toMatch(/^clicks\/\d{4}\/\d\d\/\d\d\/\d\d\/clicks-1-.*\.gz$/);
    const lines = objects.flatMap((o) => o.body.toString('utf8').split('\n').filter(Boolean));
    expect(lines.length).toBe(Number(/produced (\d+) records/.exec(producer.stdout())![1]));
    for (const line of lines.slice(0, 100)) expect(() => JSON.parse(line)).not.toThrow();
  });
});
