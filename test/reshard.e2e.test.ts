import { createHash } from 'node:crypto';
import { ListShardsCommand, SplitShardCommand, DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { SHARD_END } from '../src/checkpoints.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import type { KinesisSource } from '../src/sources/kinesis/index.js';
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
  suitePeers, waitFor,
  } from './helpers/harness.js';

const BUCKET = 'reshard';

/** Kinesis maps a partition key to the shard whose range holds the MD5 of the key, as a 128-bit number. */
const hashKeyOf = (partitionKey: string) => BigInt(`0x${createHash('md5').update(partitionKey).digest('hex')}`);

async function split(client: KinesisClient, streamName: string) {
  const { Shards } = await client.send(new ListShardsCommand({ StreamName: streamName }));
  const parent = Shards![0]!;
  const start = BigInt(parent.HashKeyRange!.StartingHashKey!);
  const end = BigInt(parent.HashKeyRange!.EndingHashKey!);
  await client.send(new SplitShardCommand({ StreamName: streamName, ShardToSplit: parent.ShardId!, NewStartingHashKey: ((start + end) / 2n).toString() }));
  await waitFor(
    async () => (await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))).StreamDescriptionSummary?.StreamStatus === 'ACTIVE',
    10_000,
    'the split',
  );
  return { Shards: Shards!, parent, start, end };
}

describe('resharding while running', () => {
  const peers = suitePeers([BUCKET]);

  it('reads a split parent to its end, then its children: every record before and after the split arrives', async () => {
    await createStream(peers.kinesisClient, 'splitting', 2);
    const config = parseConfig(serviceYaml(peers, [{ deliveryStreamName: 'splitting', streamName: 'splitting', bucket: BUCKET }]));
    const deliveredInOrder: string[] = [];
    const service = await startService(config, { log: silentLogger, onDelivered: (e) => deliveredInOrder.push(e.location) });
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

    const { Shards, parent, start, end } = await split(peers.kinesisClient, 'splitting');
    const after = await put(2_000, 2_000);

    await waitFor(() => stream.stats.recordsRead === 4_000, 60_000, 'every record read, children included');
    expect(await service.stop()).toBe(true);

    const objects = await readObjects(peers.s3Client, BUCKET, 'splitting/');
    const delivered = objects.flatMap((o) => splitFramed(o.body));
    expect(multiset(delivered)).toEqual(multiset([...before, ...after]));

    // A parent's records all precede its children's: in the order objects were delivered, and
    // inside each object. Records of the split parent's key range written before the split are
    // the parent's; those after, its children's.
    const parentRange = (key: string) => hashKeyOf(key) >= start && hashKeyOf(key) <= end;
    const byLocation = new Map(objects.map((o) => [`s3://${BUCKET}/${o.key}`, splitFramed(o.body).map((r) => r.subarray(9).toString())]));
    const sequence = deliveredInOrder.flatMap((location) => byLocation.get(location)!);
    expect(sequence).toHaveLength(4_000);
    const n = (text: string) => Number(text.split(' ')[1]);
    const ofParentRange = sequence.filter((text) => parentRange(`key-${n(text) % 257}`)).map(n);
    const lastParent = ofParentRange.findLastIndex((i) => i < 2_000);
    const firstChild = ofParentRange.findIndex((i) => i >= 2_000);
    expect(lastParent).toBeLessThan(firstChild);

    const stored = await checkpoints(peers.redisClient, 'splitting');
    expect(stored[parent.ShardId!]).toBe(SHARD_END);
    const children = [...sequences.lastByShard.keys()].filter((id) => !Shards.some((s) => s.ShardId === id));
    expect(children).toHaveLength(2);
    for (const child of children) expect(stored[child]).toBe(sequences.lastByShard.get(child));
  });

  it('LATEST on a first start: children of a parent that was closed before the start honour it, and nothing older than the start is read', async () => {
    await createStream(peers.kinesisClient, 'latest-split', 1);
    const old = Array.from({ length: 300 }, (_, i) => ({ data: framedRecord(Buffer.from(`old ${i}`)), partitionKey: `key-${i % 257}` }));
    await putAll(peers.kinesisClient, 'latest-split', old.slice(0, 150));
    await split(peers.kinesisClient, 'latest-split');
    await putAll(peers.kinesisClient, 'latest-split', old.slice(150)); // into the children, before the start
    const config = parseConfig(serviceYaml(peers, [{ deliveryStreamName: 'latest-split', streamName: 'latest-split', bucket: BUCKET, prefix: 'latest-split/', startingPosition: 'LATEST' }]));
    const service = await startService(config, { log: silentLogger });
    const source = service.sources[0] as KinesisSource;
    await waitFor(() => source.activeShards.length === 2, 15_000, 'readers on both children');
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // LATEST iterators taken
    const fresh = Array.from({ length: 200 }, (_, i) => framedRecord(Buffer.from(`new ${i}`)));
    await putAll(peers.kinesisClient, 'latest-split', fresh.map((data, i) => ({ data, partitionKey: `key-${i % 257}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead >= 200, 30_000, 'the new records read');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await service.stop()).toBe(true);
    const delivered = (await readObjects(peers.s3Client, BUCKET, 'latest-split/')).flatMap((o) => splitFramed(o.body));
    expect(multiset(delivered)).toEqual(multiset(fresh));
  });
});
