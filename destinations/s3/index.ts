import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { awsErrorName, httpSettings } from '../../src/aws.js';
import { codecs } from '../../src/codecs.js';
import { DeliveryError, type Destination, type DestinationContext, type DestinationPlugin, type EncodedBatch } from '../../src/destination.js';
import { s3DestinationSchema, type S3DestinationConfig } from './config.js';
import { objectKey } from './keys.js';
import { renderPrefix } from './prefix.js';
import { MiB } from '../../src/units.js';


export function createS3Client(config: S3DestinationConfig): S3Client {
  const custom = config.endpoint !== undefined;
  const checksums = config.requestChecksumCalculation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED');
  return new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle ?? custom,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    ...httpSettings(config.endpoint, 300_000),
  });
}

/** S3's limit on a key's length, in UTF-8 bytes. */
const MAX_KEY_BYTES = 1024;
/** Errors that say the batch itself is wrong, so retrying it cannot help. */
const PERMANENT = new Set(['KeyTooLongError', 'InvalidArgument', 'EntityTooLarge', 'InvalidObjectName']);

/** Retryable unless S3 says the request itself is wrong; access and bucket errors are retried (they are fixed outside). */
export function s3DeliveryError(err: unknown): DeliveryError {
  const name = awsErrorName(err) ?? 'Error';
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const message = `S3 ${name}${status ? ` (${status})` : ''}: ${(err as Error)?.message ?? String(err)}`;
  return new DeliveryError(message, `S3.${name}`, !PERMANENT.has(name));
}

export class S3Destination implements Destination {
  private readonly client: S3Client;

  constructor(
    private readonly config: S3DestinationConfig,
    private readonly context: DestinationContext,
  ) {
    this.client = createS3Client(config);
  }

  /** A partition whose key would pass S3's 1,024 bytes could never be written. */
  checkPartition(partitionKeys: Readonly<Record<string, string>>): string | undefined {
    let prefix: string;
    try {
      prefix = renderPrefix(this.config.objectPrefix, { time: Date.UTC(2000, 0, 1), partitionKeys });
    } catch (err) {
      return (err as Error).message;
    }
    const bytes = Buffer.byteLength(objectKey({ prefix, deliveryStreamName: this.context.deliveryStreamName, oldestArrivalTimestamp: 0, id: '00000000-0000-0000-0000-000000000000', extension: this.extensionFor(codecs.PARQUET.extension) }));
    return bytes > MAX_KEY_BYTES ? `the partition's S3 key would be ${bytes} bytes long; S3 allows ${MAX_KEY_BYTES}` : undefined;
  }

  /** Objects are named for what they hold; a configured fileExtension names delivered objects only. */
  private extensionFor(codecExtension: string): string {
    return this.config.fileExtension ?? codecExtension;
  }

  async deliver(batch: EncodedBatch, signal: AbortSignal) {
    try {
      return await this.put(batch, signal);
    } catch (err) {
      if (signal.aborted || err instanceof DeliveryError) throw err;
      throw s3DeliveryError(err);
    }
  }

  private async put(batch: EncodedBatch, signal: AbortSignal) {
    const prefix = renderPrefix(batch.errorOutputType ? this.config.errorPrefix : this.config.objectPrefix, {
      time: batch.oldestArrivalTimestamp,
      ...(batch.partitionKeys ? { partitionKeys: batch.partitionKeys } : {}),
      ...(batch.errorOutputType ? { errorOutputType: batch.errorOutputType } : {}),
    });
    const key = objectKey({
      prefix,
      deliveryStreamName: this.context.deliveryStreamName,
      oldestArrivalTimestamp: batch.oldestArrivalTimestamp,
      id: batch.id,
      extension: batch.errorOutputType ? codecs[batch.encoding].extension : this.extensionFor(codecs[batch.encoding].extension),
    });
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new DeliveryError(`the S3 key would be ${Buffer.byteLength(key)} bytes long; S3 allows ${MAX_KEY_BYTES}`, 'S3.KeyTooLongError', false);
    const contentType = codecs[batch.encoding].contentType;
    const partSize = this.config.multipartPartSizeInMBs * MiB;
    if (batch.encodedBytes <= partSize) {
      // One PutObject; the chunks are joined once here, never per record.
      const body = batch.chunks.length === 1 ? batch.chunks[0]! : Buffer.concat(batch.chunks as Buffer[], batch.encodedBytes);
      await this.client.send(
        new PutObjectCommand({ Bucket: this.config.bucket, Key: key, Body: body, ContentType: contentType }),
        { abortSignal: signal },
      );
    } else {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.config.bucket, Key: key, Body: Readable.from(batch.chunks), ContentType: contentType },
        partSize,
        queueSize: 2,
        leavePartsOnError: false,
      });
      const abort = () => void upload.abort();
      signal.addEventListener('abort', abort, { once: true });
      try {
        await upload.done();
      } finally {
        signal.removeEventListener('abort', abort);
      }
    }
    return { location: `s3://${this.config.bucket}/${key}` };
  }

  async close() {
    this.client.destroy();
  }
}

export const s3Plugin: DestinationPlugin<S3DestinationConfig> = {
  configKey: 's3Destination',
  schema: s3DestinationSchema,
  pipeline: (config) => ({
    conversion: config.conversion,
    buffer: {
      sizeBytes: config.bufferingHints.sizeInMBs * MiB,
      intervalMs: config.bufferingHints.intervalInSeconds * 1000,
      encoding: config.conversion ? 'PARQUET' : config.compressionFormat,
      appendNewlineDelimiter: config.appendNewlineDelimiter,
    },
    errorOutputEncoding: config.compressionFormat,
    processing: config.processing,
    partitioning: config.dynamicPartitioning
      ? { queryKeys: config.objectPrefix.queryKeys, lambdaKeys: config.objectPrefix.lambdaKeys }
      : undefined,
  }),
  create: (config, context) => new S3Destination(config, context),
};
