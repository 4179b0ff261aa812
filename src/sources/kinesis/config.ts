import { z } from 'zod';
import { intIn, matching, oneOf, text, httpUrl } from '../../schema.js';

export const kinesisSourceSchema = z
  .strictObject({
    streamName: matching(/^[a-zA-Z0-9_.-]{1,128}$/, 'a Kinesis stream name (1–128 of a-z A-Z 0-9 _ . -)').optional(),
    streamARN: matching(
      /^arn:[\w-]+:kinesis:[a-z0-9-]+:\d{12}:stream\/[a-zA-Z0-9_.-]{1,128}$/,
      'a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)',
    ).optional(),
    region: text('an AWS region such as us-east-1').optional(),
    endpoint: httpUrl.optional(),
    startingPosition: oneOf(['LATEST', 'TRIM_HORIZON', 'AT_TIMESTAMP'] as const).default('TRIM_HORIZON'),
    startingTimestamp: text('an ISO-8601 time').optional(),
    /** GetRecords Limit: records per call (Kinesis allows up to 10,000). */
    readLimit: intIn(1, 10_000).default(10_000),
    /** Pause after a read that returned nothing (KCL's idleTimeBetweenReadsInMillis). */
    idleTimeBetweenReadsInMillis: intIn(200, 60_000).default(1_000),
    /** How often new shards (from resharding) are looked for. */
    shardDiscoveryIntervalInSeconds: intIn(1, 3_600).default(10),
  })
  .superRefine((value, ctx) => {
    if (!value.streamName && !value.streamARN) {
      ctx.addIssue({ code: 'custom', path: ['streamName'], message: 'is required (or give streamARN)' });
    }
    if (value.streamName && value.streamARN && !value.streamARN.endsWith(`:stream/${value.streamName}`)) {
      ctx.addIssue({ code: 'custom', path: ['streamARN'], message: `names another stream than streamName ${JSON.stringify(value.streamName)}` });
    }
    if (value.startingPosition === 'AT_TIMESTAMP') {
      if (!value.startingTimestamp) {
        ctx.addIssue({ code: 'custom', path: ['startingTimestamp'], message: 'is required when startingPosition is AT_TIMESTAMP' });
      } else if (Number.isNaN(Date.parse(value.startingTimestamp))) {
        ctx.addIssue({ code: 'custom', path: ['startingTimestamp'], message: `must be an ISO-8601 time, got ${JSON.stringify(value.startingTimestamp)}` });
      }
    } else if (value.startingTimestamp) {
      ctx.addIssue({ code: 'custom', path: ['startingTimestamp'], message: 'is only used with startingPosition AT_TIMESTAMP' });
    }
  })
  .transform((value) => {
    const arnParts = value.streamARN?.split(':');
    return {
      ...value,
      streamName: value.streamName ?? value.streamARN!.split(':stream/')[1]!,
      region: value.region ?? arnParts?.[3] ?? process.env.AWS_REGION ?? 'us-east-1',
    };
  });

export type KinesisSourceConfig = z.output<typeof kinesisSourceSchema>;

