import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firehose, type CliProcess } from './helpers/cli.js';
import { SequenceTracker, checkpoints, createStream, putAll, readObjects, suitePeers, waitFor, type Peers } from './helpers/harness.js';

const BUCKET = 'reloaded';

function streamYaml(peers: Peers, name: string): string {
  return `
  - deliveryStreamName: ${name}
    kinesisStreamSource: { streamName: ${name}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200, shardDiscoveryIntervalInSeconds: 1 }
    s3Destination: { bucket: ${BUCKET}, prefix: "${name}/", endpoint: "${peers.s3.endpoint}", appendNewlineDelimiter: true, bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 } }`;
}

function yaml(peers: Peers, names: string[]): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, leaseDurationInSeconds: 2, admin: { enabled: true, port: 0 } }
deliveryStreams:${names.map((n) => streamYaml(peers, n)).join('')}
`;
}

/** Puts records `<stream>-<n>` in batches until stopped, noting each shard's last sequence number. */
class Producer {
  readonly put: string[] = [];
  readonly sequences = new SequenceTracker();
  private running = true;
  private readonly done: Promise<void>;
  constructor(peers: Peers, stream: string) {
    this.done = (async () => {
      while (this.running) {
        const batch = Array.from({ length: 50 }, (_, i) => ({ id: `${stream}-${this.put.length + i}`, partitionKey: `k${this.put.length + i}` }));
        const results = await putAll(peers.kinesisClient, stream, batch.map((b) => ({ data: Buffer.from(b.id), partitionKey: b.partitionKey })));
        results.forEach((r) => this.sequences.note(r.shardId, r.sequenceNumber));
        this.put.push(...batch.map((b) => b.id));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  }
  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }
}

const logLines = (cli: CliProcess, msg: string) =>
  cli
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('SIGHUP reloads the configuration', () => {
  const peers = suitePeers([BUCKET]);

  it('adds a stream while records flow, refuses an invalid file, removes a stream cleanly; nothing is lost', async () => {
    await createStream(peers.kinesisClient, 'reload-a', 2);
    await createStream(peers.kinesisClient, 'reload-b', 1);
    const dir = await mkdtemp(join(tmpdir(), 'firehose-reload-'));
    const path = join(dir, 'streams.yaml');
    await writeFile(path, yaml(peers, ['reload-a']));
    const run = firehose(['run', '--config', path]);
    const a = new Producer(peers, 'reload-a');
    const b = Array.from({ length: 500 }, (_, i) => `reload-b-${i}`);
    const bSequences = new SequenceTracker();
    try {
      await waitFor(() => logLines(run, 'admin endpoint listening').length === 1, 20_000, 'the service to start');
      const admin = logLines(run, 'admin endpoint listening')[0]!.url as string;
      const incoming = async (stream: string) => Number(new RegExp(`^firehose_incoming_records_total\\{delivery_stream="${stream}"\\} (\\d+)$`, 'm').exec(await (await fetch(`${admin}/metrics`)).text())?.[1] ?? -1);
      await waitFor(async () => (await incoming('reload-a')) > 0, 20_000, 'reload-a reading');

      // Added while records flow: it starts; the running one is left alone.
      await writeFile(path, yaml(peers, ['reload-a', 'reload-b']));
      run.child.kill('SIGHUP');
      await waitFor(() => logLines(run, 'reloaded').length === 1, 20_000, 'the first reload');
      expect(logLines(run, 'reloaded')[0]).toMatchObject({ added: ['reload-b'], unchanged: ['reload-a'], removed: [], restarted: [] });
      (await putAll(peers.kinesisClient, 'reload-b', b.map((id, i) => ({ data: Buffer.from(id), partitionKey: `k${i}` })))).forEach((r) => bSequences.note(r.shardId, r.sequenceNumber));
      await waitFor(async () => (await incoming('reload-b')) === 500, 20_000, 'reload-b to read its 500 records');

      // An invalid file is refused; everything runs on as it was.
      await writeFile(path, yaml(peers, ['reload-a', 'reload-b']).replace('bucket: reloaded', 'bucket: Not_A_Bucket'));
      run.child.kill('SIGHUP');
      await waitFor(() => logLines(run, 'reload refused: the new configuration is invalid; the running one is kept').length === 1, 20_000, 'the refusal');
      expect(JSON.stringify(logLines(run, 'reload refused: the new configuration is invalid; the running one is kept')[0]!.problems)).toContain('s3Destination.bucket: must be an S3 bucket name');
      const before = await incoming('reload-a');
      await waitFor(async () => (await incoming('reload-a')) > before, 10_000, 'reload-a still reading after the refusal');

      // Removed: once everything put is read, it stops as at shutdown.
      await a.stop();
      await waitFor(async () => (await incoming('reload-a')) === a.put.length, 30_000, 'reload-a to read everything put');
      await writeFile(path, yaml(peers, ['reload-b']));
      run.child.kill('SIGHUP');
      await waitFor(() => logLines(run, 'reloaded').length === 2, 30_000, 'the second reload');
      expect(logLines(run, 'reloaded')[1]).toMatchObject({ removed: ['reload-a'], unchanged: ['reload-b'], unclean: [] });
      expect(logLines(run, 'delivery stream stopped')).toEqual([expect.objectContaining({ deliveryStream: 'reload-a', clean: true })]);
      expect(await incoming('reload-a')).toBe(-1); // gone from /metrics
      // Every record of the removed stream is in S3, and its checkpoints are at the last records put.
      const deliveredA = (await readObjects(peers.s3Client, BUCKET, 'reload-a/')).flatMap((o) => o.body.toString().split('\n').filter(Boolean));
      expect(deliveredA.sort()).toEqual([...a.put].sort());
      expect(await checkpoints(peers.redisClient, 'reload-a')).toEqual(Object.fromEntries(a.sequences.lastByShard));

      // Changed: it restarts from its checkpoints, under the new settings.
      await writeFile(path, yaml(peers, ['reload-b']).replace('intervalInSeconds: 60', 'intervalInSeconds: 61'));
      run.child.kill('SIGHUP');
      await waitFor(() => logLines(run, 'reloaded').length === 3, 30_000, 'the third reload');
      expect(logLines(run, 'reloaded')[2]).toMatchObject({ restarted: ['reload-b'], added: [], removed: [], unclean: [] });
      const more = Array.from({ length: 300 }, (_, i) => `reload-b-${500 + i}`);
      (await putAll(peers.kinesisClient, 'reload-b', more.map((id, i) => ({ data: Buffer.from(id), partitionKey: `m${i}` })))).forEach((r) => bSequences.note(r.shardId, r.sequenceNumber));
      b.push(...more);
      await waitFor(async () => (await incoming('reload-b')) === 300, 20_000, 'the restarted reload-b to read on from its checkpoint');
    } finally {
      await a.stop();
      run.child.kill('SIGTERM');
    }
    expect((await run.exited).code).toBe(0);
    const deliveredB = (await readObjects(peers.s3Client, BUCKET, 'reload-b/')).flatMap((o) => o.body.toString().split('\n').filter(Boolean));
    expect(deliveredB.sort()).toEqual([...b].sort());
    expect(await checkpoints(peers.redisClient, 'reload-b')).toEqual(Object.fromEntries(bSequences.lastByShard));
  }, 180_000);
});
