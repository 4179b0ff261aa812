import { ListShardsCommand, SplitShardCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARD_END } from '../src/checkpoints.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
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

const BUCKET = 'reshard';

describe('resharding while running', () => {
  let peers: Peers;
  beforeAll(async () => {
    peers = await startPeers([BUCKET]);
  });
  afterAll(async () => {
    await peers?.stop();
  });

  it('reads a split parent to its end, then its children: every record before and after the split arrives', async () => {
    await createStream(peers.kinesisClient, 'splitting', 2);
    const config = parseConfig(serviceYaml(peers, [{ deliveryStreamName: 'splitting', streamName: 'splitting', bucket: BUCKET }]));
    const service = await startService(config, { log: silentLogger });
    const stream = service.streams[0]!;
    const sequences = new SequenceTracker();
    const put = async (from: number, count: number) => {
      const batch = Array.from({ length: count }, (_, i) => ({
        data: framedRecord(Buffer.from(`record ${from + i}`)),
        partitionKey: `key-${(from + i) % 257}`,
      }));
      (await putAll(peers.kinesisClient, 'splitting', batch)).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
      return batch.map((r) => r.data);
    };

    const before = await put(0, 2_000);
    await waitFor(() => stream.stats.recordsRead >= 500, 30_000, 'reading under way');

    const { Shards } = await peers.kinesisClient.send(new ListShardsCommand({ StreamName: 'splitting' }));
    const parent = Shards![0]!;
    const start = BigInt(parent.HashKeyRange!.StartingHashKey!);
    const end = BigInt(parent.HashKeyRange!.EndingHashKey!);
    await peers.kinesisClient.send(
      new SplitShardCommand({
        StreamName: 'splitting',
        ShardToSplit: parent.ShardId!,
        NewStartingHashKey: ((start + end) / 2n).toString(),
      }),
    );
    await waitFor(
      async () =>
        (await peers.kinesisClient.send(new DescribeStreamSummaryCommand({ StreamName: 'splitting' }))).StreamDescriptionSummary
          ?.StreamStatus === 'ACTIVE',
      10_000,
      'the split',
    );
    const after = await put(2_000, 2_000);

    await waitFor(() => stream.stats.recordsRead === 4_000, 60_000, 'every record read, children included');
    expect(await service.stop()).toBe(true);

    const delivered = (await readObjects(peers.s3Client, BUCKET, 'splitting/')).flatMap((o) => splitFramed(o.body));
    expect(multiset(delivered)).toEqual(multiset([...before, ...after]));

    const stored = await checkpoints(peers.redisClient, 'splitting');
    expect(stored[parent.ShardId!]).toBe(SHARD_END);
    const children = [...sequences.lastByShard.keys()].filter((id) => !Shards!.some((s) => s.ShardId === id));
    expect(children).toHaveLength(2);
    for (const child of children) expect(stored[child]).toBe(sequences.lastByShard.get(child));
  });
});
