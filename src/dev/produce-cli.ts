import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { httpSettings, awsErrorName } from '../aws.js';
import { createStream, startSampleProducer } from './producer.js';

export interface ProduceOptions {
  readonly stream: string;
  readonly endpoint?: string | undefined;
  readonly region: string;
  readonly recordsPerSecond: number;
  /** Creates the stream with this many shards when it does not exist. */
  readonly shards?: number | undefined;
  readonly out: (line: string) => void;
}

/**
 * `firehose produce`: sample JSON log records into a Kinesis stream at a steady rate until SIGTERM
 * or SIGINT (the compose file's producer; a quick load for a stream of one's own). Credentials come
 * from the SDK's default chain.
 */
export async function runProduce(options: ProduceOptions): Promise<number> {
  const client = new KinesisClient({ region: options.region, ...httpSettings(options.endpoint, 30_000) });
  try {
    if (!(await exists(client, options.stream))) {
      if (!options.shards) {
        options.out(`firehose produce: stream ${JSON.stringify(options.stream)} does not exist; give --shards N to create it`);
        return 2;
      }
      await createStream(client, options.stream, options.shards).catch((err: unknown) => {
        if (awsErrorName(err) !== 'ResourceInUseException') throw err; // another producer made it meanwhile
      });
      options.out(`created stream ${JSON.stringify(options.stream)} with ${options.shards} shard(s)`);
    }
    const producer = startSampleProducer(client, options.stream, options.recordsPerSecond);
    options.out(`producing ~${options.recordsPerSecond} records/s into ${JSON.stringify(options.stream)}; SIGTERM or Ctrl-C stops`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve());
      process.once('SIGINT', () => resolve());
    });
    await producer.stop();
    options.out(`produced ${producer.produced} records`);
    return 0;
  } finally {
    client.destroy();
  }
}

async function exists(client: KinesisClient, stream: string): Promise<boolean> {
  // The stream source may still be starting (compose starts them together): wait for it to answer.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'ResourceNotFoundException') return false;
      if (attempt >= 30) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
