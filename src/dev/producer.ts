import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { httpSettings } from '../aws.js';
import { sleep } from '../clock.js';
import { sampleLogRecord } from './sample-records.js';

export function localKinesisClient(endpoint: string): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    ...httpSettings(endpoint, 30_000),
  });
}

export async function createStream(client: KinesisClient, streamName: string, shards: number): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shards }));
  for (;;) {
    const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    await sleep(50);
  }
}

export interface PutResult {
  readonly shardId: string;
  readonly sequenceNumber: string;
}

/**
 * Puts records (PutRecords, ≤ 500 and < 5 MB a call), retrying those Kinesis reports as failed.
 * Returns where each record landed, in input order.
 */
export async function putAll(
  client: KinesisClient,
  streamName: string,
  records: ReadonlyArray<{ data: Uint8Array; partitionKey: string }>,
): Promise<PutResult[]> {
  const results: PutResult[] = new Array(records.length);
  for (let i = 0; i < records.length; ) {
    let pending: number[] = [];
    let bytes = 0;
    while (i < records.length && pending.length < 500) {
      const size = records[i]!.data.length + records[i]!.partitionKey.length;
      if (pending.length > 0 && bytes + size > 4.5 * 1024 * 1024) break;
      bytes += size;
      pending.push(i++);
    }
    for (let attempt = 0; pending.length > 0; attempt++) {
      const out = await client.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: pending.map((j) => ({ Data: records[j]!.data, PartitionKey: records[j]!.partitionKey })),
        }),
      );
      const failed: number[] = [];
      pending.forEach((j, k) => {
        const entry = out.Records?.[k];
        if (entry?.SequenceNumber && entry.ShardId) results[j] = { shardId: entry.ShardId, sequenceNumber: entry.SequenceNumber };
        else failed.push(j);
      });
      pending = failed;
      if (pending.length > 0) await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }
  return results;
}

/** The dev mode's sample producer: realistic JSON log lines at a steady rate until stopped. */
export function startSampleProducer(client: KinesisClient, streamName: string, recordsPerSecond: number) {
  const stopping = new AbortController();
  let produced = 0;
  const done = (async () => {
    const tick = 250;
    const perTick = Math.max(1, Math.round((recordsPerSecond * tick) / 1000));
    while (!stopping.signal.aborted) {
      const started = Date.now();
      const records = Array.from({ length: perTick }, (_, i) => ({
        data: Buffer.from(sampleLogRecord()),
        partitionKey: `user-${produced + i}`,
      }));
      try {
        await putAll(client, streamName, records);
        produced += records.length;
      } catch {
        // The dev peers are shutting down.
      }
      await sleep(Math.max(0, tick - (Date.now() - started)), stopping.signal);
    }
  })();
  return {
    get produced() {
      return produced;
    },
    async stop() {
      stopping.abort();
      await done;
    },
  };
}
