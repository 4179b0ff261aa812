import { z } from 'zod';
import { flag, httpUrl, intIn, matching, oneOf, reportAt, text } from '../../src/schema.js';
import { dataFormatConversionConfigurationSchema } from '../../src/conversion/config.js';
import { dynamicPartitioningConfigurationSchema, processingConfigurationSchema } from '../../src/transform/config.js';
import { compilePrefix, PrefixError, withDefaultTime, type CompiledPrefix } from './prefix.js';

const bucketName = matching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3–63 of a-z 0-9 . -)');

/** sizeInMBs defaults to 5, or 128 with format conversion and 64 with dynamic partitioning, as in Firehose. */
export const s3BufferingHints = z
  .strictObject({
    sizeInMBs: intIn(1, 128).optional(),
    intervalInSeconds: intIn(60, 900).default(300),
  })
  .default({ intervalInSeconds: 300 });

const prefix = z
  .string({ error: 'must be a string' })
  .default('')
  .refine((value) => !value.startsWith('/'), { message: 'must not start with "/"' })
  .refine((value) => value.length <= 512, { message: 'must be at most 512 characters' });

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
    processingConfiguration: processingConfigurationSchema.optional(),
    dynamicPartitioningConfiguration: dynamicPartitioningConfigurationSchema.optional(),
    dataFormatConversionConfiguration: dataFormatConversionConfigurationSchema.optional(),
    /**
     * Exactly-once objects: batches per shard, cut where a Kinesis record begins, recorded (fenced)
     * before upload, named from their first record, uploaded create-only, re-formed byte for byte
     * after a crash or a lease move.
     */
    exactlyOnce: flag().default(false),
    /** Server-side encryption of every object written: AES256 (SSE-S3) or aws:kms (SSE-KMS, with kmsKeyARN or the bucket's default key). */
    serverSideEncryption: oneOf(['AES256', 'aws:kms'] as const).optional(),
    kmsKeyARN: matching(/^arn:[\w-]+:kms:[a-z0-9-]+:\d{12}:(key|alias)\/\S+$/, 'a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)').optional(),
    /** CloudFormation's EncryptionConfiguration: KMSEncryptionConfig.AWSKMSKeyARN, or NoEncryptionConfig. */
    encryptionConfiguration: z
      .strictObject({
        kmsEncryptionConfig: z.strictObject({ awsKMSKeyARN: matching(/^arn:[\w-]+:kms:[a-z0-9-]+:\d{12}:(key|alias)\/\S+$/, 'a KMS key ARN') }).optional(),
        noEncryptionConfig: oneOf(['NoEncryption'] as const).optional(),
      })
      .optional(),
    /**
     * A manifest beside every object (not the error output's, not Parquet's yet): each record's
     * length, arrival time, shard, sequence numbers and partition key, so a replay reads the archive
     * back exactly. Under `<prefix><yyyy/MM/dd/HH>/<object key>.manifest.json.gz`.
     */
    manifests: z
      .strictObject({ enabled: flag().default(true), prefix: prefix.refine((p) => p === '' || p.endsWith('/'), { message: 'must end in "/"' }).default('_manifests/') })
      .default({ enabled: true, prefix: '_manifests/' }),
    /** Source record backup, as Firehose's S3BackupMode: Enabled copies every record as read, before any transform, to s3BackupConfiguration. */
    s3BackupMode: oneOf(['Disabled', 'Enabled'] as const).default('Disabled'),
    /** Where the copies go: bucket (or bucketARN), prefix, errorOutputPrefix, bufferingHints, compressionFormat, encryption; endpoint and region default to this destination's. */
    s3BackupConfiguration: z.record(z.string(), z.unknown(), { error: 'must be a mapping (bucket, prefix, bufferingHints, compressionFormat, …)' }).optional(),
  })
  .superRefine((value, ctx) => {
    if (!value.bucket && !value.bucketARN) {
      ctx.addIssue({ code: 'custom', path: ['bucket'], message: 'is required (or give bucketARN)' });
    }
    if (value.bucket && value.bucketARN && value.bucketARN.split(':::')[1] !== value.bucket) {
      ctx.addIssue({ code: 'custom', path: ['bucketARN'], message: `names another bucket than bucket ${JSON.stringify(value.bucket)}` });
    }
    if (value.kmsKeyARN && value.serverSideEncryption !== 'aws:kms') ctx.addIssue({ code: 'custom', path: ['kmsKeyARN'], message: 'needs serverSideEncryption: aws:kms' });
    const kms = value.encryptionConfiguration?.kmsEncryptionConfig;
    if (kms && value.encryptionConfiguration?.noEncryptionConfig) ctx.addIssue({ code: 'custom', path: ['encryptionConfiguration'], message: 'give kmsEncryptionConfig or noEncryptionConfig, not both' });
    if (kms && value.serverSideEncryption) ctx.addIssue({ code: 'custom', path: ['encryptionConfiguration'], message: 'give encryptionConfiguration or serverSideEncryption, not both' });
    if (value.exactlyOnce) {
      const not = (path: string, what: string) => ctx.addIssue({ code: 'custom', path: [path], message: `is not supported with exactlyOnce yet (${what})` });
      if (value.dynamicPartitioningConfiguration?.enabled) not('dynamicPartitioningConfiguration', 'objects are cut per shard');
      if (value.dataFormatConversionConfiguration) not('dataFormatConversionConfiguration', 'GZIP and UNCOMPRESSED objects are re-formed byte for byte; Parquet is not proven to be');
    }
  })
  .transform((value, ctx) => {
    const conversion = value.dataFormatConversionConfiguration ?? undefined;
    const partitioning = value.dynamicPartitioningConfiguration?.enabled ?? false;
    const floor = conversion || partitioning ? 64 : 1;
    const sizeInMBs = value.bufferingHints.sizeInMBs ?? (conversion ? 128 : partitioning ? 64 : 5);
    if (sizeInMBs < floor) {
      ctx.addIssue({
        code: 'custom',
        path: ['bufferingHints', 'sizeInMBs'],
        message: `must be 64–128 with ${conversion ? 'format conversion' : 'dynamic partitioning'} (as in Firehose), got ${sizeInMBs}`,
      });
    }
    if (conversion && value.compressionFormat !== 'UNCOMPRESSED') {
      ctx.addIssue({
        code: 'custom',
        path: ['compressionFormat'],
        message: `must be UNCOMPRESSED with format conversion, got ${value.compressionFormat}: Parquet compresses inside the file (outputFormatConfiguration.serializer.parquetSerDe.compression)`,
      });
    }
    const compiled = compilePrefixes(value, ctx);
    const sourceBackup = value.s3BackupMode === 'Enabled' ? backupConfig(value, ctx) : undefined;
    if (value.s3BackupMode === 'Disabled' && value.s3BackupConfiguration) ctx.addIssue({ code: 'custom', path: ['s3BackupMode'], message: 'is Disabled: set it to Enabled for s3BackupConfiguration to be used' });
    if (sourceBackup && value.exactlyOnce) ctx.addIssue({ code: 'custom', path: ['s3BackupMode'], message: 'Enabled is not supported with exactlyOnce yet (a batch commit moves the checkpoint past its records\' copies)' });
    return {
      ...value,
      bufferingHints: { ...value.bufferingHints, sizeInMBs },
      conversion,
      bucket: value.bucket ?? value.bucketARN!.split(':::')[1]!,
      processing: value.processingConfiguration ?? undefined,
      dynamicPartitioning: value.dynamicPartitioningConfiguration?.enabled ?? false,
      encryption: value.encryptionConfiguration?.kmsEncryptionConfig
        ? { serverSideEncryption: 'aws:kms' as const, kmsKeyARN: value.encryptionConfiguration.kmsEncryptionConfig.awsKMSKeyARN }
        : value.serverSideEncryption
          ? { serverSideEncryption: value.serverSideEncryption, kmsKeyARN: value.kmsKeyARN }
          : undefined,
      /** The backup bucket's configuration (an S3DestinationConfig), when s3BackupMode is Enabled. */
      sourceBackup: sourceBackup as unknown,
      ...compiled,
    };
  });

/** The backup's own configuration, parsed as an S3 destination of its own that inherits where S3 is. */
let parseBackup: (value: unknown) => z.ZodSafeParseResult<unknown> = () => {
  throw new Error('s3 destination schema not yet built');
};

function backupConfig(
  value: { s3BackupConfiguration?: Record<string, unknown> | undefined; endpoint?: string | undefined; region: string; forcePathStyle?: boolean | undefined; requestChecksumCalculation?: string | undefined },
  ctx: z.RefinementCtx,
): unknown {
  if (!value.s3BackupConfiguration) {
    ctx.addIssue({ code: 'custom', path: ['s3BackupConfiguration'], message: 'is required with s3BackupMode: Enabled (the bucket every source record is copied to)' });
    return undefined;
  }
  const own = value.s3BackupConfiguration;
  for (const key of ['processingConfiguration', 'dynamicPartitioningConfiguration', 'dataFormatConversionConfiguration', 'exactlyOnce', 's3BackupMode', 's3BackupConfiguration']) {
    if (own[key] !== undefined) ctx.addIssue({ code: 'custom', path: ['s3BackupConfiguration', key], message: 'does not apply to a backup: it holds the source records as they were read' });
  }
  const inherited = Object.fromEntries(
    (['endpoint', 'region', 'forcePathStyle', 'requestChecksumCalculation'] as const).filter((k) => value[k] !== undefined && own[k] === undefined).map((k) => [k, value[k]]),
  );
  const parsed = parseBackup({ ...inherited, ...own });
  if (!parsed.success) {
    reportAt(ctx, ['s3BackupConfiguration'], parsed.error);
    return undefined;
  }
  return parsed.data;
}

parseBackup = (value) => s3DestinationSchema.safeParse(value);

export type S3DestinationConfig = z.output<typeof s3DestinationSchema>;

interface PrefixInputs {
  prefix: string;
  errorOutputPrefix: string;
  processingConfiguration?: z.output<typeof processingConfigurationSchema> | undefined;
  dynamicPartitioningConfiguration?: { enabled: boolean } | undefined;
}

/**
 * Firehose's rules for Prefix and ErrorOutputPrefix: expressions in the prefix need an error
 * prefix; an error prefix with expressions names !{firehose:error-output-type}; the prefix cannot;
 * partition keys need dynamic partitioning and a processor that makes them. Without a timestamp
 * expression the prefix gets yyyy/MM/dd/HH/ appended (not with dynamic partitioning, whose
 * prefixes are the partition), and a plain error prefix gets <error-output-type>/yyyy/MM/dd/HH/.
 */
function compilePrefixes(value: PrefixInputs, ctx: z.RefinementCtx): { objectPrefix: CompiledPrefix; errorPrefix: CompiledPrefix } {
  const compile = (template: string, path: string): CompiledPrefix | undefined => {
    try {
      return compilePrefix(template);
    } catch (err) {
      if (!(err instanceof PrefixError)) throw err;
      ctx.addIssue({ code: 'custom', path: [path], message: err.message });
      return undefined;
    }
  };
  const main = compile(value.prefix, 'prefix');
  const errors = compile(value.errorOutputPrefix, 'errorOutputPrefix');
  const partitioning = value.dynamicPartitioningConfiguration?.enabled ?? false;
  const processing = value.processingConfiguration;
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (main && errors) {
    if (main.hasErrorType) issue('prefix', '!{firehose:error-output-type} can only be used in errorOutputPrefix');
    if (main.hasExpressions && !value.errorOutputPrefix) issue('errorOutputPrefix', 'is required when prefix has !{...} expressions');
    if (errors.hasExpressions && !errors.hasErrorType) issue('errorOutputPrefix', 'must contain !{firehose:error-output-type} when it has expressions');
    if (errors.queryKeys.length + errors.lambdaKeys.length > 0) issue('errorOutputPrefix', 'cannot use partition keys (failed records may have none)');
    const usesKeys = main.queryKeys.length + main.lambdaKeys.length > 0;
    if (usesKeys && !partitioning) issue('prefix', 'partition keys (!{partitionKeyFrom…}) need dynamicPartitioningConfiguration.enabled: true');
    if (partitioning) {
      if (!usesKeys) issue('prefix', 'with dynamic partitioning, the prefix must use !{partitionKeyFromQuery:…} or !{partitionKeyFromLambda:…}');
      if (!value.errorOutputPrefix) issue('errorOutputPrefix', 'is required with dynamic partitioning');
    }
    const queryKeys = processing?.metadataExtraction?.keys ?? [];
    for (const key of main.queryKeys) {
      if (!queryKeys.includes(key)) issue('prefix', `!{partitionKeyFromQuery:${key}}: no MetadataExtraction processor query produces "${key}"`);
    }
    if (main.lambdaKeys.length > 0 && !processing?.transform) issue('prefix', '!{partitionKeyFromLambda:…} needs a Lambda processor that returns metadata.partitionKeys');
  }
  const objectPrefix = main && !partitioning ? withDefaultTime(main) : (main ?? compilePrefix(''));
  const errorPrefix =
    errors && errors.hasExpressions
      ? errors
      : compilePrefix(`${(value.errorOutputPrefix || value.prefix).replace(/!\{[^}]*\}/g, '')}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH/}`);
  return { objectPrefix, errorPrefix };
}
