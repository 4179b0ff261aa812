import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firehose, type CliProcess } from './helpers/cli.js';
import {
  SequenceTracker,
  checkpoints,
  createStream,
  framedRecord,
  multiset,
  putAll,
  readObjects,
  serviceYaml,
  splitFramed,
  startPeers,
  waitFor,
  type Peers,
} from './helpers/harness.js';

const BUCKET = 'crash';

describe('a hard kill mid-run loses nothing', () => {
  let peers: Peers;
  let running: CliProcess | undefined;

  beforeAll(async () => {
    peers = await startPeers([BUCKET]);
  });
  afterAll(async () => {
    running?.child.kill('SIGKILL');
    await peers?.stop();
  });

  it('SIGKILL while records flow, restart: every record is in S3, and checkpoints reach the last record after a clean stop', async () => {
    await createStream(peers.kinesisClient, 'crashy', 3);
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-crash-')), 'streams.yaml');
    await writeFile(
      configPath,
      serviceYaml(peers, [{ deliveryStreamName: 'crashy', streamName: 'crashy', bucket: BUCKET, sizeInMBs: 1 }]),
    );
    const payloads = Array.from({ length: 12_000 }, (_, i) => framedRecord(Buffer.concat([Buffer.from(`#${i}:`), randomBytes(200 + (i % 700))])));
    const sequences = new SequenceTracker();
    const objectsInS3 = async () => (await readObjects(peers.s3Client, BUCKET, 'crashy/')).length;

    running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'warn' });
    // The producer keeps putting while the service is killed and restarted.
    const producing = (async () => {
      for (let i = 0; i < payloads.length; i += 600) {
        const batch = payloads.slice(i, i + 600).map((data, j) => ({ data, partitionKey: `k${i + j}` }));
        (await putAll(peers.kinesisClient, 'crashy', batch)).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    await waitFor(async () => (await objectsInS3()) >= 2, 60_000, 'the first objects');
    running.child.kill('SIGKILL');
    expect((await running.exited).signal).toBe('SIGKILL');
    const checkpointedAtKill = await checkpoints(peers.redisClient, 'crashy');
    expect(Object.keys(checkpointedAtKill).length).toBeGreaterThan(0); // it was mid-run, not at the start

    running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'warn' });
    await producing;
    // A clean stop delivers the buffer's tail. The service reports what it read only through its
    // checkpoints, so stop and start again until a clean stop has checkpointed the last record.
    const last = Object.fromEntries(sequences.lastByShard);
    for (let run = 1; ; run++) {
      await new Promise((r) => setTimeout(r, 3_000));
      running.child.kill('SIGTERM');
      const stopped = await running.exited;
      expect(running.stderr()).not.toMatch(/"level":"error"/);
      expect(stopped.code).toBe(0);
      running = undefined;
      if (JSON.stringify(await checkpoints(peers.redisClient, 'crashy')) === JSON.stringify(last) || run === 4) break;
      running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'warn' });
    }

    const delivered = (await readObjects(peers.s3Client, BUCKET, 'crashy/')).flatMap((o) => splitFramed(o.body));
    const seen = multiset(delivered);
    const missing = [...multiset(payloads).keys()].filter((k) => !seen.has(k));
    expect(missing).toEqual([]);
    // At-least-once: the kill may repeat what was delivered after the last checkpoint, nothing else.
    expect(delivered.length).toBeGreaterThanOrEqual(payloads.length);
    expect(await checkpoints(peers.redisClient, 'crashy')).toEqual(Object.fromEntries(sequences.lastByShard));
  });

  it('LATEST: a kill before the first checkpoint write does not skip what was read, and nothing older is read', async () => {
    await createStream(peers.kinesisClient, 'fresh', 1);
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-latest-')), 'streams.yaml');
    await writeFile(
      configPath,
      serviceYaml(peers, [{ deliveryStreamName: 'fresh', streamName: 'fresh', bucket: BUCKET, startingPosition: 'LATEST' }])
        // No checkpoint is written before the kill.
        .replace('checkpointIntervalInMillis: 200', 'checkpointIntervalInMillis: 60000'),
    );
    const old = Array.from({ length: 20 }, (_, i) => framedRecord(Buffer.from(`before the first start ${i}`)));
    await putAll(peers.kinesisClient, 'fresh', old.map((data) => ({ data, partitionKey: 'k' })));

    running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'info' });
    await waitFor(() => running!.stderr().includes('"from":"LATEST"'), 20_000, 'the reader at LATEST');
    await new Promise((r) => setTimeout(r, 1_500));
    const fresh = Array.from({ length: 50 }, (_, i) => framedRecord(Buffer.from(`after the first start ${i}`)));
    await putAll(peers.kinesisClient, 'fresh', fresh.map((data) => ({ data, partitionKey: 'k' })));
    await new Promise((r) => setTimeout(r, 1_500)); // read and buffered, not yet delivered
    running.child.kill('SIGKILL');
    await running.exited;
    expect(await checkpoints(peers.redisClient, 'fresh')).toEqual({});

    running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'info' });
    await waitFor(() => running!.stderr().includes('"from":"AT_TIMESTAMP"'), 20_000, 'the reader at the first start');
    await new Promise((r) => setTimeout(r, 2_000));
    running.child.kill('SIGTERM');
    expect((await running.exited).code).toBe(0);
    running = undefined;

    const delivered = (await readObjects(peers.s3Client, BUCKET, 'fresh/')).flatMap((o) => splitFramed(o.body));
    expect(multiset(delivered)).toEqual(multiset(fresh));
  });
});
