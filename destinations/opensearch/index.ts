import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from '@opensearch-project/opensearch';
import { DeliveryError, type Destination, type DestinationContext, type DestinationPlugin, type EncodedBatch, type ItemFailure } from '../../src/destination.js';
import { S3Destination } from '../s3/index.js';
import { openSearchDestinationSchema, type OpenSearchDestinationConfig } from './config.js';
import { MiB } from '../../src/units.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** Firehose's index name suffixes, from the record's arrival time (UTC). */
export function rotatedIndex(indexName: string, period: OpenSearchDestinationConfig['indexRotationPeriod'], time: number): string {
  const d = new Date(time);
  const y = d.getUTCFullYear();
  switch (period) {
    case 'NoRotation':
      return indexName;
    case 'OneHour':
      return `${indexName}-${y}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}`;
    case 'OneDay':
      return `${indexName}-${y}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    case 'OneMonth':
      return `${indexName}-${y}-${pad(d.getUTCMonth() + 1)}`;
    case 'OneWeek': {
      // ISO-8601 week: weeks start on Monday; week 1 holds the year's first Thursday.
      const thursday = new Date(Date.UTC(y, d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7) + 3));
      const weekYear = thursday.getUTCFullYear();
      const week = 1 + Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / 604_800_000);
      return `${indexName}-${weekYear}-w${pad(week)}`;
    }
  }
}

/**
 * Indexes records with _bulk. Document ids derive from the delivery stream and the record's source
 * position (FIREHOSE_DEFAULT), so a retry or a replay overwrites rather than duplicates. Each
 * document has its own outcome: 429 and 5xx are retried, other errors fail that document alone.
 */
export class OpenSearchDestination implements Destination {
  private readonly client: Client;

  constructor(
    private readonly config: OpenSearchDestinationConfig,
    private readonly context: DestinationContext,
  ) {
    this.client = new Client({
      node: config.clusterEndpoint!,
      ...(config.basicAuth ? { auth: { username: config.basicAuth.username, password: config.basicAuth.password } } : {}),
      ...(config.tls ? { ssl: { rejectUnauthorized: config.tls.rejectUnauthorized, ...(config.tls.caFile ? { ca: readFileSync(config.tls.caFile) } : {}) } } : {}),
      requestTimeout: 120_000,
      maxRetries: 0, // the engine owns retries
    });
  }

  documentId(source: { shardId: string; sequenceNumber: string; subSequenceNumber: number }): string {
    return createHash('sha256')
      .update(`${this.context.deliveryStreamName}\0${source.shardId}\0${source.sequenceNumber}\0${source.subSequenceNumber}`)
      .digest('base64url')
      .slice(0, 27);
  }

  /** Any answer to a ping counts but a refusal of the credentials. */
  async probe(): Promise<void> {
    try {
      await this.client.ping(undefined, { requestTimeout: 2_000 });
    } catch (err) {
      const status = (err as { meta?: { statusCode?: number } }).meta?.statusCode;
      if (status && status !== 401 && status !== 403) return;
      throw new Error(`OpenSearch ${new URL(this.config.clusterEndpoint!).host}: ${status ? `answered ${status} (the credentials are refused)` : (err as Error).message}`, { cause: err });
    }
  }

  async deliver(batch: EncodedBatch, signal: AbortSignal) {
    const data = batch.recordData ?? [];
    const sources = batch.recordSources ?? [];
    const withIds = this.config.documentIdOptions.defaultDocumentIdFormat === 'FIREHOSE_DEFAULT';
    const body: string[] = [];
    const sent: number[] = [];
    const targets: Array<{ index: string; id: string | undefined }> = [];
    const failed: ItemFailure[] = [];
    data.forEach((bytes, i) => {
      const source = sources[i]!;
      const index = rotatedIndex(this.config.indexName, this.config.indexRotationPeriod, source.arrival);
      const id = withIds ? this.documentId(source) : undefined;
      let document = bytes.toString('utf8');
      if (/[\r\n]/.test(document)) {
        // NDJSON: a document must be one line. Compact it, or fail it alone if it is not JSON.
        try {
          document = JSON.stringify(JSON.parse(document));
        } catch {
          failed.push({ index: i, retryable: false, code: 'OpenSearch.MalformedDocument', message: 'the record is not JSON', details: { esDocumentId: id ?? '', esIndexName: index } });
          return;
        }
      }
      body.push(JSON.stringify({ index: id ? { _index: index, _id: id } : { _index: index } }), document);
      sent.push(i);
      targets.push({ index, id });
    });
    if (sent.length > 0) {
      let response;
      try {
        // Strings in a bulk body go out verbatim (the client's typing only names objects).
        response = await this.client.bulk({ body } as never, { abortSignal: signal } as never);
      } catch (err) {
        if (signal.aborted) throw err;
        // No status: the connection was refused, reset or timed out — the cluster may be back soon.
        const status = (err as { meta?: { statusCode?: number | null } }).meta?.statusCode ?? undefined;
        const retryable = status === undefined || status === 429 || status >= 500;
        throw new DeliveryError(`_bulk failed${status ? ` (${status})` : ' (no response)'}: ${(err as Error).message}`, status === undefined ? 'OpenSearch.ConnectionFailed' : 'OpenSearch.BulkRequestFailed', retryable);
      }
      const items = (response.body as { items?: Array<Record<string, { status: number; _id?: string; error?: { type?: string; reason?: string } }>> }).items ?? [];
      if (items.length !== sent.length) throw new DeliveryError(`_bulk answered ${items.length} items for ${sent.length} documents`, 'OpenSearch.InvalidResponse', true);
      items.forEach((item, k) => {
        const result = Object.values(item)[0]!;
        if (result.status >= 200 && result.status < 300) return;
        const target = targets[k]!;
        failed.push({
          index: sent[k]!,
          retryable: result.status === 429 || result.status >= 500,
          code: `OpenSearch.${result.error?.type ?? `Status${result.status}`}`,
          message: `${result.status}: ${result.error?.reason ?? 'no reason given'}`,
          details: { esDocumentId: target.id ?? result._id ?? '', esIndexName: target.index },
        });
      });
    }
    return { location: `${this.config.clusterEndpoint}/_bulk (${sent.length - failed.filter((f) => sent.includes(f.index)).length} of ${data.length} indexed)`, failed };
  }

  async close() {
    await this.client.close();
  }
}

export const openSearchPlugin: DestinationPlugin<OpenSearchDestinationConfig> = {
  configKey: 'amazonOpenSearchServiceDestination',
  metricLabel: 'opensearch',
  schema: openSearchDestinationSchema,
  pipeline: (config) => ({
    buffer: {
      sizeBytes: config.bufferingHints.sizeInMBs * MiB,
      intervalMs: config.bufferingHints.intervalInSeconds * 1000,
      encoding: 'UNCOMPRESSED',
      appendNewlineDelimiter: false,
    },
    errorOutputEncoding: config.s3Configuration.compressionFormat,
    processing: config.processingConfiguration ?? undefined,
    recordOriented: true,
    retry: { durationMs: config.retryOptions.durationInSeconds * 1000, errorOutputType: 'AmazonOpenSearchService-failed' },
  }),
  create: (config, context) => new OpenSearchDestination(config, context),
  createErrorOutput: (config, context) => new S3Destination(config.s3Configuration, context),
};
