import type { SourcePlugin } from '../../source.js';
import { kinesisSourceSchema, type KinesisSourceConfig } from './config.js';
import { KinesisSource, kinesisIdentity } from './source.js';

export { KinesisSource };
export type { KinesisSourceConfig };

/** Kinesis Data Streams, read shard by shard with GetRecords (`kinesisStreamSource` in a delivery stream). */
export const kinesisSourcePlugin: SourcePlugin<KinesisSourceConfig> = {
  configKey: 'kinesisStreamSource',
  schema: kinesisSourceSchema,
  identity: kinesisIdentity,
  region: (config) => config.region,
  eventFields: (config) => ({
    event: { sourceKinesisStreamArn: config.streamARN ?? `arn:aws:kinesis:${config.region}:000000000000:stream/${config.streamName}` },
    recordMetadataKey: 'kinesisRecordMetadata',
  }),
  create: (config, context) => new KinesisSource(config, context),
};
