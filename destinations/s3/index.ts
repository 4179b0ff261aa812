import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { awsErrorName, httpSettings } from '../../src/aws.js';
import { codecs } from '../../src/codecs.js';
import { failpoint } from '../../src/failpoints.js';
import { DeliveryError, type DeliveryReceipt, type Destination, type DestinationContext, type DestinationPlugin, type EncodedBatch } from '../../src/destination.js';
import { s3DestinationSchema, type S3DestinationConfig } from './config.js';
import { objectKey } from './keys.js';
import { renderPrefix } from './prefix.js';
import type { Logger } from '../../src/log.js';
import { MiB } from '../../src/units.js';
import { manifestKey } from '../../src/archive/manifest.js';
import { uploadChunks } from './upload.js';


/** `log`: where the SDK's warnings go (without it, the console). */
export function createS3Client(config: S3DestinationConfig, options: { log?: Logger } = {}): S3Client {
  const custom = config.endpoint !== undefined;
  const checksums = config.requestChecksumCalculation ?? (custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED');
  return new S3Client({
    region: config.region,
    ...(options.log ? { logger: sdkLogger(options.log) } : {}),
    forcePathStyle: config.forcePathStyle ?? custom,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    ...httpSettings(config.endpoint, 300_000),
  });
}

/** What the SDK says when a request with a stream body fails: upload.ts retries it and reports what fails for good. */
const STREAMING_RETRY_NOTICE = 'An error was encountered in a non-retryable streaming request.';

/**
 * The SDK's logger, into ours: its per-request info lines are dropped, its notice that a streamed
 * request failed (printed raw on the console for every failed part otherwise) is debug, any other
 * warning or error is ours at its level.
 */
function sdkLogger(log: Logger) {
  const text = (content: unknown[]) => content.map((c) => (typeof c === 'string' ? c : JSON.stringify(c))).join(' ');
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: (...content: unknown[]) => {
      const message = text(content);
      if (message === STREAMING_RETRY_NOTICE) log.debug('S3 SDK: a streamed request failed (retried by the upload)');
      else log.warn('S3 SDK warning', { message });
    },
    error: (...content: unknown[]) => log.error('S3 SDK error', { message: text(content) }),
  };
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
    this.client = createS3Client(config, { log: context.log });
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

  /** What every PutObject and multipart upload carries for server-side encryption. */
  private get sse(): { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string } {
    const e = this.config.encryption;
    if (!e) return {};
    return { ServerSideEncryption: e.serverSideEncryption, ...(e.kmsKeyARN ? { SSEKMSKeyId: e.kmsKeyARN } : {}) };
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

  /**
   * Exactly-once objects are named from their data: `<prefix><stream>-<shardId>-<firstSequenceNumber>`,
   * the prefix's time being the first record's arrival, so a re-formed batch has the same key.
   */
  objectKeyFor(batch: EncodedBatch): string {
    const range = batch.exactlyOnce!.range;
    const prefix = renderPrefix(this.config.objectPrefix, { time: range.first.arrival });
    return `${prefix}${this.context.deliveryStreamName}-${range.shardId}-${range.first.sequenceNumber}${this.extensionFor(codecs[batch.encoding].extension)}`;
  }

  /**
   * Create-only (`If-None-Match: *`): an object already there was written by an earlier attempt or
   * owner from the same records, so it is adopted. One whose recorded range differs was formed
   * under another configuration: both are kept (no record lost), the new one under a key naming its end.
   */
  async probe(signal: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }), { abortSignal: signal });
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      throw new Error(`S3 bucket ${JSON.stringify(this.config.bucket)}: ${status ? `HeadBucket answered ${status} (${awsErrorName(err) ?? 'error'})` : (err as Error).message}`, { cause: err });
    }
  }

  /**
   * The object's manifest goes first: a manifest whose object is missing is skipped by a replay,
   * an object without one could only be split by its delimiter. A retry writes the same one again.
   */
  private async putManifest(batch: EncodedBatch, objectKey: string, signal: AbortSignal): Promise<void> {
    if (!batch.manifest || batch.errorOutputType || !this.config.manifests.enabled) return;
    const body = await batch.manifest.encode({
      deliveryStream: this.context.deliveryStreamName,
      bucket: this.config.bucket,
      key: objectKey,
      encoding: batch.encoding,
      delimiter: this.config.appendNewlineDelimiter ? '\n' : '',
    });
    await this.client.send(
      new PutObjectCommand({ Bucket: this.config.bucket, Key: manifestKey(this.config.manifests.prefix, objectKey, batch.oldestArrivalTimestamp), Body: body, ContentType: 'application/gzip', ...this.sse }),
      { abortSignal: signal },
    );
  }

  private async putCreateOnly(batch: EncodedBatch, signal: AbortSignal): Promise<DeliveryReceipt> {
    const { range, configHash } = batch.exactlyOnce!;
    const key = this.objectKeyFor(batch);
    const position = (p: { sequenceNumber: string; subSequenceNumber: number }) => `${p.sequenceNumber}:${p.subSequenceNumber}`;
    const metadata = { 'firehose-shard': range.shardId, 'firehose-first': position(range.first), 'firehose-last': position(range.last), 'firehose-config': configHash };
    const create = async (target: string): Promise<'created' | 'exists'> => {
      await this.putManifest(batch, target, signal);
      try {
        await uploadChunks(
          this.client,
          { Bucket: this.config.bucket, Key: target, ContentType: codecs[batch.encoding].contentType, IfNoneMatch: '*', Metadata: metadata, ...this.sse },
          { chunks: batch.chunks, bytes: batch.encodedBytes },
          this.config.multipartPartSizeInMBs * MiB,
          signal,
          () => setImmediate(() => failpoint('mid-upload')), // the request is on its way
        );
        return 'created';
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) return 'exists';
        throw err;
      }
    };
    if ((await create(key)) === 'created') return { location: `s3://${this.config.bucket}/${key}`, createOnly: 'created' };
    const head = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: key }), { abortSignal: signal });
    if (head.Metadata?.['firehose-last'] === metadata['firehose-last']) return { location: `s3://${this.config.bucket}/${key}`, createOnly: 'adopted' };
    const other = key.replace(/(\.[^/]*)?$/, (ext) => `-${range.last.sequenceNumber}${ext}`);
    this.context.log.warn('an object with this first record but another range exists (the configuration changed since it was written): both are kept', { key, existingLast: head.Metadata?.['firehose-last'], last: metadata['firehose-last'], writtenAs: other });
    const outcome = await create(other);
    return { location: `s3://${this.config.bucket}/${other}`, createOnly: outcome === 'created' ? 'created' : 'adopted' };
  }

  private async put(batch: EncodedBatch, signal: AbortSignal): Promise<DeliveryReceipt> {
    if (batch.exactlyOnce && !batch.errorOutputType) return this.putCreateOnly(batch, signal);
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
    await this.putManifest(batch, key, signal);
    await uploadChunks(
      this.client,
      { Bucket: this.config.bucket, Key: key, ContentType: codecs[batch.encoding].contentType, ...this.sse },
      { chunks: batch.chunks, bytes: batch.encodedBytes },
      this.config.multipartPartSizeInMBs * MiB,
      signal,
      () => setImmediate(() => failpoint('mid-upload')), // the request is on its way
    );
    return { location: `s3://${this.config.bucket}/${key}` };
  }

  async close() {
    this.client.destroy();
  }
}

/**
 * What an exactly-once object's bytes and key depend on: a batch re-formed under another
 * configuration (other hints, prefix, compression) may differ from the one its intent recorded.
 */
function configHash(config: S3DestinationConfig): string {
  const { bucket, prefix, errorOutputPrefix, bufferingHints, compressionFormat, appendNewlineDelimiter, fileExtension, processing } = config;
  const hash = createHash('sha256').update(JSON.stringify({ bucket, prefix, errorOutputPrefix, bufferingHints, compressionFormat, appendNewlineDelimiter, fileExtension, processing }));
  // A transform's code is part of what an object holds: an edited handler is another configuration.
  if (processing?.transform) hash.update(readFileSync(processing.transform.module));
  return hash.digest('hex').slice(0, 16);
}

export const s3Plugin: DestinationPlugin<S3DestinationConfig> = {
  configKey: 's3Destination',
  metricLabel: 's3',
  schema: s3DestinationSchema,
  pipeline: (config) => ({
    conversion: config.conversion,
    buffer: {
      sizeBytes: config.bufferingHints.sizeInMBs * MiB,
      intervalMs: config.bufferingHints.intervalInSeconds * 1000,
      encoding: config.conversion ? 'PARQUET' : config.compressionFormat,
      appendNewlineDelimiter: config.appendNewlineDelimiter,
      perShard: config.exactlyOnce,
      manifest: config.manifests.enabled,
    },
    exactlyOnce: config.exactlyOnce ? { configHash: configHash(config) } : undefined,
    errorOutputEncoding: config.compressionFormat,
    processing: config.processing,
    sourceBackup: backupOf(config)
      ? {
          buffer: {
            sizeBytes: backupOf(config)!.bufferingHints.sizeInMBs * MiB,
            intervalMs: backupOf(config)!.bufferingHints.intervalInSeconds * 1000,
            encoding: backupOf(config)!.compressionFormat,
            appendNewlineDelimiter: false,
            // The source records as read, each described: the archive to replay through a fixed transform.
            manifest: backupOf(config)!.manifests.enabled,
          },
        }
      : undefined,
    partitioning: config.dynamicPartitioning
      ? { queryKeys: config.objectPrefix.queryKeys, lambdaKeys: config.objectPrefix.lambdaKeys }
      : undefined,
  }),
  create: (config, context) => new S3Destination(config, context),
  createSourceBackup: (config, context) => {
    const backup = backupOf(config);
    return backup ? new S3Destination(backup, context) : undefined;
  },
};

function backupOf(config: S3DestinationConfig): S3DestinationConfig | undefined {
  return config.sourceBackup as S3DestinationConfig | undefined;
}
