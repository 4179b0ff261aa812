import { fileURLToPath } from 'node:url';
import { sleep } from '../clock.js';
import { loadConfig } from '../config.js';
import { createLogger, levelFromEnv } from '../log.js';
import { startService } from '../service.js';
import { LOCAL_CREDENTIALS, startKinesalite, startRedis, startS3rver } from './peers.js';
import { createStream, localKinesisClient, startSampleProducer } from './producer.js';

export interface DevOptions {
  readonly shards: number;
  readonly recordsPerSecond: number;
  /** Stop after this many objects (used by the smoke test); 0 runs until Ctrl-C. */
  readonly maxObjects: number;
  readonly out: (line: string) => void;
}

const devConfigPath = fileURLToPath(new URL('../../../config/dev.yaml', import.meta.url));

/**
 * `firehose dev`: redis-server, kinesalite and s3rver on free ports, a demo stream with several
 * shards and a sample producer, the pipeline from config/dev.yaml, and a line per object delivered.
 */
export async function runDevMode(options: DevOptions): Promise<number> {
  const { out } = options;
  out('starting local peers: redis-server, kinesalite (Kinesis), s3rver (S3)…');
  const redis = await startRedis();
  const kinesis = await startKinesalite();
  const s3 = await startS3rver(['dev-archive']);
  out(`  redis     ${redis.url}\n  kinesis   ${kinesis.endpoint}\n  s3        ${s3.endpoint}  (objects under ${s3.directory}/dev-archive)`);

  const env: Record<string, string | undefined> = {
    ...process.env,
    REDIS_URL: redis.url,
    KINESIS_ENDPOINT: kinesis.endpoint,
    S3_ENDPOINT: s3.endpoint,
  };
  // s3rver accepts only its own key pair; kinesalite accepts any.
  process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  const config = await loadConfig(devConfigPath, env);
  const streamName = (config.deliveryStreams[0]!.source.config as { streamName: string }).streamName;

  const kinesisClient = localKinesisClient(kinesis.endpoint);
  await createStream(kinesisClient, streamName, options.shards);
  const producer = startSampleProducer(kinesisClient, streamName, options.recordsPerSecond);
  out(`stream "${streamName}" (${options.shards} shards) ← sample producer, ~${options.recordsPerSecond} records/s of ~1 KB JSON`);
  out('pipeline: Kinesis → 1 MB / 60 s buffer → GZIP → S3, checkpoints in Redis. Ctrl-C to stop.\n');

  let objects = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const service = await startService(config, {
    log: createLogger(levelFromEnv('warn')),
    onDelivered: (event) => {
      objects++;
      out(
        `delivered ${event.location}  records=${event.records}  bytes=${event.rawBytes}  gzip=${event.encodedBytes}  (${event.reason})`,
      );
      if (options.maxObjects > 0 && objects >= options.maxObjects) finish();
    },
  });

  const onSignal = () => finish();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  out('\nstopping: producer, then the pipeline (flush, deliver, checkpoint)…');
  await producer.stop();
  const stats = service.streams[0]!.stats;
  // Let the readers catch up with the producer (bounded), so the summary accounts for every record.
  for (let waited = 0; stats.recordsRead < producer.produced && waited < 5_000; waited += 100) await sleep(100);
  const clean = await service.stop();
  const unread = producer.produced - stats.recordsRead;
  out(
    `produced ${producer.produced} records; read ${stats.recordsRead}; delivered ${stats.recordsDelivered} in ${stats.objectsDelivered} objects; ${clean ? 'all checkpointed' : 'NOT all checkpointed'}` +
      (unread > 0 ? ` (${unread} not yet read stay in the stream)` : ''),
  );
  kinesisClient.destroy();
  // The objects stay where the banner said they are, to be looked at after the run.
  await Promise.all([kinesis.stop(), s3.stop({ keepDirectory: true }), redis.stop()]);
  return clean ? 0 : 1;
}
