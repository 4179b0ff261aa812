import { z } from 'zod';
import { flag, httpUrl, intIn, matching, oneOf, text } from '../../src/schema.js';

const bucketName = matching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3–63 of a-z 0-9 . -)');

export const s3BufferingHints = z
  .strictObject({
    sizeInMBs: intIn(1, 128).default(5),
    intervalInSeconds: intIn(60, 900).default(300),
  })
  .default({ sizeInMBs: 5, intervalInSeconds: 300 });

/** Prefix expressions (`!{...}`) arrive with dynamic partitioning; until then say so instead of writing them literally. */
const prefix = z
  .string({ error: 'must be a string' })
  .default('')
  .refine((value) => !value.includes('!{'), {
    message: 'prefix expressions (!{...}) are not supported yet; use a plain prefix (the YYYY/MM/dd/HH/ part is added for you)',
  })
  .refine((value) => !value.startsWith('/'), { message: 'must not start with "/"' });

export const s3DestinationSchema = z
  .strictObject({
    bucket: bucketName.optional(),
    bucketARN: matching(/^arn:[\w-]+:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket ARN (arn:aws:s3:::name)').optional(),
    prefix,
    errorOutputPrefix: prefix,
    bufferingHints: s3BufferingHints,
    compressionFormat: oneOf(['UNCOMPRESSED', 'GZIP'] as const).default('UNCOMPRESSED'),
    /** Adds "\n" after every record, as Firehose's AppendDelimiterToRecord processor does. */
    appendNewlineDelimiter: flag().default(false),
    fileExtension: matching(/^\.[0-9a-z!\-_.*'()]{1,127}$/, 'an extension such as ".json.gz"').optional(),
    region: text('an AWS region such as us-east-1').default(process.env.AWS_REGION ?? 'us-east-1'),
    endpoint: httpUrl.optional(),
    forcePathStyle: flag().optional(),
    /**
     * S3-compatible stores differ in what checksums they accept; with a custom endpoint the default
     * is WHEN_REQUIRED (the SDK's streamed checksums otherwise end up stored inside objects by s3rver).
     */
    requestChecksumCalculation: oneOf(['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const).optional(),
    /** Objects larger than this are uploaded in parts (S3 minimum part size is 5 MiB). */
    multipartPartSizeInMBs: intIn(5, 128).default(16),
  })
  .superRefine((value, ctx) => {
    if (!value.bucket && !value.bucketARN) {
      ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'is required (or give bucketARN)' });
    }
    if (value.bucket && value.bucketARN && value.bucketARN.split(':::')[1] !== value.bucket) {
      ctx.addIssue({ code: 'custom', path: ['bucketARN'], message: `names another bucket than bucket ${JSON.stringify(value.bucket)}` });
    }
  })
  .transform((value) => ({ ...value, bucket: value.bucket ?? value.bucketARN!.split(':::')[1]! }));

export type S3DestinationConfig = z.output<typeof s3DestinationSchema>;
