import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { httpSettings } from '../../src/aws.js';
import type { Destination, DestinationContext, DestinationPlugin, EncodedBatch } from '../../src/destination.js';
import { s3DestinationSchema, type S3DestinationConfig } from './config.js';
import { objectKey } from './keys.js';
import { renderPrefix } from './prefix.js';

const MiB = 1024 * 1024;

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

export class S3Destination implements Destination {
  private readonly client: S3Client;
  private readonly extension: string;

  constructor(
    private readonly config: S3DestinationConfig,
    private readonly context: DestinationContext,
  ) {
    this.client = createS3Client(config);
    this.extension = config.fileExtension ?? (config.conversion ? '.parquet' : config.compressionFormat === 'GZIP' ? '.gz' : '');
  }

  async deliver(batch: EncodedBatch, signal: AbortSignal) {
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
      extension: this.extension,
    });
    const contentType = this.config.conversion && !batch.errorOutputType
      ? 'application/vnd.apache.parquet'
      : batch.compression === 'GZIP' ? 'application/gzip' : 'application/octet-stream';
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
      compression: config.compressionFormat,
      appendNewlineDelimiter: config.appendNewlineDelimiter,
    },
    processing: config.processing,
    partitioning: config.dynamicPartitioning
      ? { queryKeys: config.objectPrefix.queryKeys, lambdaKeys: config.objectPrefix.lambdaKeys }
      : undefined,
  }),
  create: (config, context) => new S3Destination(config, context),
};
