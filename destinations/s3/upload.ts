import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { backoff } from '../../src/backoff.js';
import { sleep } from '../../src/clock.js';

/** What an object is written with: PutObject's fields, or CreateMultipartUpload's. */
export interface ObjectParams {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
  readonly ServerSideEncryption?: 'AES256' | 'aws:kms';
  readonly SSEKMSKeyId?: string;
  readonly Metadata?: Record<string, string>;
  /** `*`: create-only (one PutObject whatever the size). */
  readonly IfNoneMatch?: string;
}

/** Attempts per request, as the SDK's standard retry mode makes. */
const ATTEMPTS = 3;
/** Parts in flight at once for one object. */
const PARTS_IN_FLIGHT = 2;

/**
 * Bytes [start, end) of an object held as the encoder's chunks, as a stream of views of them.
 * Nothing is joined: a 28 MB object went up as a copy of each 16 MiB part beside the chunks it was
 * made of (and a Buffer body is hashed with SHA-256 on the event loop to sign it; a stream is sent
 * as UNSIGNED-PAYLOAD, its integrity covered by TCP/TLS and S3's checksums where they apply).
 */
function chunkRange(chunks: readonly Uint8Array[], start: number, end: number): Readable {
  const views: Uint8Array[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    const from = Math.max(start, offset);
    const to = Math.min(end, offset + chunk.length);
    if (from < to) views.push(from === offset && to === offset + chunk.length ? chunk : chunk.subarray(from - offset, to - offset));
    offset += chunk.length;
    if (offset >= end) break;
  }
  return Readable.from(views, { objectMode: false });
}

/** Errors worth another attempt: throttling, S3's 5xx, a connection that failed or timed out. */
const RETRYABLE_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable', 'TimeoutError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);

function retryableS3Error(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (!e || typeof e !== 'object') return false;
  const status = e.$metadata?.httpStatusCode;
  if (e.$retryable || (status !== undefined && (status >= 500 || status === 429))) return true;
  return RETRYABLE_NAMES.has(e.name ?? '') || NETWORK_CODES.has(e.code ?? '');
}

/**
 * One request with a stream body, retried here: the SDK makes one attempt of such a request (a
 * stream it sent is spent; it notes "non-retryable streaming request" and throws). `send` builds
 * a fresh body each time. Requests without a body are retried by the SDK itself.
 */
async function sendStreamed<T>(send: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (signal.aborted || attempt >= ATTEMPTS || !retryableS3Error(err)) throw err;
      await sleep(backoff(attempt, 100, 20_000), signal);
    }
  }
}

/**
 * Writes an object from its chunks: one PutObject up to `partSize` (or create-only, whatever the
 * size), a multipart upload above it, two parts in flight, aborted when it fails so no parts are
 * left behind. `onSending` is told once the first request is on its way.
 */
export async function uploadChunks(
  client: S3Client,
  params: ObjectParams,
  body: { readonly chunks: readonly Uint8Array[]; readonly bytes: number },
  partSize: number,
  signal: AbortSignal,
  onSending?: () => void,
): Promise<void> {
  const { chunks, bytes } = body;
  if (bytes <= partSize || params.IfNoneMatch !== undefined) {
    await sendStreamed(() => {
      const sending = client.send(new PutObjectCommand({ ...params, Body: chunkRange(chunks, 0, bytes), ContentLength: bytes }), { abortSignal: signal });
      onSending?.();
      return sending;
    }, signal);
    return;
  }
  const { IfNoneMatch: _createOnly, ...create } = params;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand(create), { abortSignal: signal });
  if (!UploadId) throw new Error(`S3 CreateMultipartUpload for ${params.Key} answered without an UploadId`);
  onSending?.();
  const count = Math.ceil(bytes / partSize);
  const parts: CompletedPart[] = new Array(count);
  // A part that failed stops the others: the upload is aborted, not finished around a hole.
  const failed = new AbortController();
  const partSignal = AbortSignal.any([signal, failed.signal]);
  let next = 0;
  const uploadParts = async () => {
    while (next < count && !partSignal.aborted) {
      const index = next++;
      const start = index * partSize;
      const end = Math.min(bytes, start + partSize);
      const { ETag } = await sendStreamed(
        () => client.send(new UploadPartCommand({ Bucket: params.Bucket, Key: params.Key, UploadId, PartNumber: index + 1, Body: chunkRange(chunks, start, end), ContentLength: end - start }), { abortSignal: partSignal }),
        partSignal,
      );
      parts[index] = { ETag, PartNumber: index + 1 };
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(PARTS_IN_FLIGHT, count) }, () =>
        uploadParts().catch((err: unknown) => {
          failed.abort();
          throw err;
        }),
      ),
    );
    signal.throwIfAborted();
    await client.send(new CompleteMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal });
  } catch (err) {
    // Parts of an upload never completed are kept (and billed) until it is aborted.
    // Also when the delivery was cancelled (shutdown): bounded, so it cannot hold the exit up.
    await client.send(new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId }), { abortSignal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    throw err;
  }
}
