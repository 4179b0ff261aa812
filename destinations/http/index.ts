import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { codecs } from '../../src/codecs.js';
import { DeliveryError, type Destination, type DestinationContext, type DestinationPlugin, type EncodedBatch } from '../../src/destination.js';
import { S3Destination } from '../s3/index.js';
import { httpEndpointDestinationSchema, type HttpEndpointDestinationConfig } from './config.js';
import { MiB } from '../../src/units.js';

const PROBE_TIMEOUT_MS = 2_000;

/** The spec's limits: 10,000 records and 64 MiB of body (before compression) per request. */
const MAX_RECORDS = 10_000;
const MAX_BODY_BYTES = 64 * MiB;
const RESPONSE_TIMEOUT_MS = 3 * 60 * 1000;
const MAX_RESPONSE_BYTES = MiB;

interface Request {
  readonly body: Buffer;
  readonly timestamp: number;
}

/**
 * Delivers to any receiver built for Firehose's HTTP endpoint delivery specification: one POST per
 * batch with the Firehose headers and body, the same request id on every retry, success only on a
 * 200 whose JSON body echoes that id. 413 is permanent; anything else that does not conform is a
 * retryable failure (the spec's "treated as a 500").
 */
export class HttpEndpointDestination implements Destination {
  // The body (and its request id) is built once per batch and reused by every retry.
  private readonly requests = new WeakMap<EncodedBatch, Request>();
  private readonly url: URL;
  private readonly commonAttributes: string | undefined;

  constructor(
    private readonly config: HttpEndpointDestinationConfig,
    private readonly context: DestinationContext,
  ) {
    this.url = new URL(config.endpointConfiguration.url);
    const attributes = config.requestConfiguration.commonAttributes;
    this.commonAttributes = attributes ? JSON.stringify({ commonAttributes: attributes }) : undefined;
  }

  async deliver(batch: EncodedBatch, signal: AbortSignal) {
    const { body } = await this.requestFor(batch);
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': body.length,
      'X-Amz-Firehose-Protocol-Version': '1.0',
      'X-Amz-Firehose-Request-Id': batch.id,
      'X-Amz-Firehose-Source-Arn': this.context.deliveryStreamArn,
    };
    if (this.config.endpointConfiguration.accessKey !== undefined) headers['X-Amz-Firehose-Access-Key'] = this.config.endpointConfiguration.accessKey;
    if (this.commonAttributes) headers['X-Amz-Firehose-Common-Attributes'] = this.commonAttributes;
    if (this.config.requestConfiguration.contentEncoding === 'GZIP') headers['Content-Encoding'] = codecs.GZIP.contentEncoding!;

    const response = await this.post(body, headers, signal);
    if (response.status === 413) {
      throw new DeliveryError(`the endpoint refused the request as too large (413)${response.errorMessage}`, 'HttpEndpoint.PayloadTooLarge', false);
    }
    if (response.status !== 200) {
      throw new DeliveryError(`the endpoint answered ${response.status}${response.errorMessage}`, 'HttpEndpoint.DestinationException', true);
    }
    let echoed: unknown;
    try {
      echoed = JSON.parse(response.body);
    } catch {
      throw new DeliveryError('the endpoint answered 200 without a JSON body', 'HttpEndpoint.InvalidResponseFromDestination', true);
    }
    if (!echoed || typeof echoed !== 'object' || (echoed as { requestId?: unknown }).requestId !== batch.id) {
      throw new DeliveryError(`the endpoint answered 200 without echoing requestId ${batch.id}`, 'HttpEndpoint.InvalidResponseFromDestination', true);
    }
    return { location: `${this.url.origin}${this.url.pathname} (request ${batch.id})` };
  }

  async close() {}

  private async requestFor(batch: EncodedBatch): Promise<Request> {
    const existing = this.requests.get(batch);
    if (existing) return existing;
    const records = batch.recordData ?? [];
    if (records.length > MAX_RECORDS) throw new DeliveryError(`a request holds at most ${MAX_RECORDS} records`, 'HttpEndpoint.TooManyRecords', false);
    const timestamp = Date.now();
    const parts: Buffer[] = [Buffer.from(`{"requestId":${JSON.stringify(batch.id)},"timestamp":${timestamp},"records":[`)];
    records.forEach((data, i) => parts.push(Buffer.from(`${i ? ',' : ''}{"data":"${data.toString('base64')}"}`)));
    parts.push(Buffer.from(']}'));
    let body = Buffer.concat(parts);
    if (body.length > MAX_BODY_BYTES) throw new DeliveryError(`the request body would be ${body.length} bytes (at most ${MAX_BODY_BYTES})`, 'HttpEndpoint.PayloadTooLarge', false);
    if (this.config.requestConfiguration.contentEncoding === 'GZIP') body = Buffer.from(await codecs.GZIP.encodeChunk!(body));
    const built = { body, timestamp };
    this.requests.set(batch, built);
    return built;
  }

  /** Any answer to a HEAD counts (endpoints need not serve one), but a refusal of the access key. */
  async probe(signal: AbortSignal): Promise<void> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string> = {};
    if (this.config.endpointConfiguration.accessKey !== undefined) headers['X-Amz-Firehose-Access-Key'] = this.config.endpointConfiguration.accessKey;
    const status = await new Promise<number>((resolve, reject) => {
      const req = send(this.url, { method: 'HEAD', headers, timeout: PROBE_TIMEOUT_MS, signal }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    }).catch((err: unknown) => {
      throw new Error(`HTTP endpoint ${this.url.origin}: ${(err as Error).message}`, { cause: err });
    });
    if (status === 401 || status === 403) throw new Error(`HTTP endpoint ${this.url.origin}: answered ${status} (the access key is refused)`);
  }

  private post(body: Buffer, headers: Record<string, string | number>, signal: AbortSignal) {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<{ status: number; body: string; errorMessage: string }>((resolve, reject) => {
      const req = send(this.url, { method: 'POST', headers, timeout: RESPONSE_TIMEOUT_MS, signal }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const json = (res.headers['content-type'] ?? '').includes('application/json');
          let errorMessage = '';
          try {
            const parsed = JSON.parse(text) as { errorMessage?: unknown };
            if (typeof parsed.errorMessage === 'string') errorMessage = `: ${parsed.errorMessage}`;
          } catch {
            // a non-JSON error body carries no message
          }
          // A response that breaks the spec (not JSON, too large) counts as a 500.
          const status = res.statusCode === 200 && (!json || size > MAX_RESPONSE_BYTES) ? 500 : (res.statusCode ?? 500);
          resolve({ status, body: text, errorMessage });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new DeliveryError('the endpoint did not answer within 3 minutes', 'HttpEndpoint.RequestTimeout', true)));
      req.on('error', (err) => reject(err instanceof DeliveryError ? err : new DeliveryError(`cannot reach the endpoint: ${err.message}`, 'HttpEndpoint.ConnectionFailed', true)));
      req.end(body);
    });
  }
}

export const httpEndpointPlugin: DestinationPlugin<HttpEndpointDestinationConfig> = {
  configKey: 'httpEndpointDestination',
  metricLabel: 'http_endpoint',
  schema: httpEndpointDestinationSchema,
  pipeline: (config) => ({
    buffer: {
      // Base64 grows data by 4/3: stop short of the 64 MiB body limit.
      sizeBytes: Math.min(config.bufferingHints.sizeInMBs * MiB, Math.floor((MAX_BODY_BYTES * 3) / 4) - MiB),
      intervalMs: config.bufferingHints.intervalInSeconds * 1000,
      encoding: 'UNCOMPRESSED',
      appendNewlineDelimiter: false,
      maxRecords: MAX_RECORDS,
    },
    errorOutputEncoding: config.s3Configuration.compressionFormat,
    processing: config.processingConfiguration ?? undefined,
    recordOriented: true,
    retry: { durationMs: config.retryOptions.durationInSeconds * 1000, errorOutputType: 'http-endpoint-failed' },
  }),
  create: (config, context) => new HttpEndpointDestination(config, context),
  createErrorOutput: (config, context) => new S3Destination(config.s3Configuration, context),
};
