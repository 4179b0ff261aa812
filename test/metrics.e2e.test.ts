import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { createStream, putAll, suitePeers, waitFor, type Peers } from './helpers/harness.js';
import { startReceiver } from './helpers/http-receiver.js';

const BUCKET = 'metrics-backup';
const STREAM = 'measured';
const TRANSFORMED = 'measured-transform';
const arn = (name: string) => `arn:aws:firehose:us-east-1:000000000000:deliverystream/${name}`;
const failEveryTenth = fileURLToPath(new URL('./fixtures/transforms/fail-one-in-ten.mjs', import.meta.url));
const hasPromtool = () => spawnSync('promtool', ['--version']).status === 0;

interface Scrape {
  /** The value of the one series whose labels include all of `labels`; NaN when there is none. */
  value(name: string, labels?: Record<string, string>): number;
  readonly text: string;
}

function parse(text: string): Scrape {
  const series: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    series.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return {
    text,
    value(name, labels = {}) {
      const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
      return found[0]?.value ?? Number.NaN;
    },
  };
}

function yaml(peers: Peers, url: string): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime:
  checkpointIntervalInMillis: 200
  shutdownTimeoutInSeconds: 30
  memoryBudgetInMBs: 16
  deadLetterQueue: { enabled: true, maxSizeInMBs: 16 }
  admin: { enabled: true, port: 0 }
deliveryStreams:
  - deliveryStreamName: ${STREAM}
    kinesisStreamSource: { streamName: ${STREAM}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200, shardDiscoveryIntervalInSeconds: 1 }
    httpEndpointDestination:
      endpointConfiguration: { url: "${url}", name: receiver }
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 600 }
      s3BackupMode: FailedDataOnly
      s3Configuration: { bucket: ${BUCKET}, prefix: "${STREAM}/", errorOutputPrefix: "${STREAM}-failed/", endpoint: "${peers.s3.endpoint}" }
  - deliveryStreamName: ${TRANSFORMED}
    kinesisStreamSource: { streamName: ${TRANSFORMED}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    s3Destination:
      bucket: ${BUCKET}
      prefix: "${TRANSFORMED}/"
      endpoint: "${peers.s3.endpoint}"
      processingConfiguration:
        enabled: true
        processors:
          - type: Lambda
            parameters: { module: "${failEveryTenth}", bufferSizeInMBs: 0.2 }
`;
}

/** 1 KiB each, so 1,024 of them fill a 1 MiB buffer exactly and nothing waits for the interval. */
const record = (n: number) => {
  const json = JSON.stringify({ n, pad: '' });
  return { data: Buffer.from(json.replace('"pad":""', `"pad":"${'m'.repeat(1024 - json.length)}"`)), partitionKey: `k${n}` };
};

describe('/metrics while the pipeline runs', () => {
  const peers = suitePeers([BUCKET]);

  it('counts what was put and delivered; DataFreshness and iterator age rise while the endpoint stalls and fall after it recovers; promtool is clean', async () => {
    let stalled = false;
    const receiver = await startReceiver({
      sourceArn: arn(STREAM),
      reply: (_n, requestId) => (stalled ? { status: 503, body: { requestId, timestamp: Date.now(), errorMessage: 'stalled on purpose' } } : { status: 200 }),
    });
    await createStream(peers.kinesisClient, STREAM, 2);
    await createStream(peers.kinesisClient, TRANSFORMED, 1);
    const service = await startService(parseConfig(yaml(peers, receiver.url)), { log: silentLogger });
    const scrape = async () => {
      const res = await fetch(`${service.adminUrl}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parse(await res.text());
    };
    const stream = { delivery_stream: STREAM };
    const http = { delivery_stream: STREAM, destination: 'http_endpoint' };
    try {
      // Phase 1: three buffers' worth flows through.
      await putAll(peers.kinesisClient, STREAM, Array.from({ length: 3 * 1024 }, (_, i) => record(i)));
      await waitFor(async () => (await scrape()).value('firehose_delivery_records_total', http) === 3 * 1024, 60_000, 'three buffers delivered');
      let m = await scrape();
      expect(m.value('firehose_incoming_records_total', stream)).toBe(3 * 1024);
      expect(m.value('firehose_incoming_bytes_total', stream)).toBe(3 * 1024 * 1024);
      expect(m.value('firehose_data_read_from_kinesis_stream_records_total', stream)).toBe(3 * 1024);
      expect(m.value('firehose_delivery_bytes_total', http)).toBe(3 * 1024 * 1024);
      expect(m.value('firehose_delivery_objects_total', http)).toBe(3);
      expect(m.value('firehose_error_output_records_total', stream)).toBe(0);
      expect(m.value('firehose_dlq_depth', stream)).toBe(0);
      expect(m.value('firehose_build_info', {})).toBe(1);
      expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(m.value('nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      const freshAfterDelivery = m.value('firehose_delivery_data_freshness_seconds', http);
      if (hasPromtool()) {
        const lint = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
        expect(lint.stdout + lint.stderr).toBe('');
        expect(lint.status).toBe(0);
      }

      // The transform's invocations: ExecuteProcessing as a histogram, records by result.
      await putAll(peers.kinesisClient, TRANSFORMED, Array.from({ length: 1_000 }, (_, i) => record(i)));
      const transformed = { delivery_stream: TRANSFORMED };
      await waitFor(async () => (await scrape()).value('firehose_execute_processing_invocations_total', { ...transformed, outcome: 'success' }) >= 4, 30_000, 'four invocations by size');
      m = await scrape();
      const invocations = m.value('firehose_execute_processing_invocations_total', { ...transformed, outcome: 'success' });
      expect(m.value('firehose_execute_processing_duration_seconds_count', transformed)).toBe(invocations);
      expect(m.value('firehose_execute_processing_duration_seconds_bucket', { ...transformed, le: '+Inf' })).toBe(invocations);
      expect(m.value('firehose_execute_processing_duration_seconds_sum', transformed)).toBeGreaterThan(0);
      expect(m.value('firehose_execute_processing_invocations_total', { ...transformed, outcome: 'failure' })).toBe(0);
      const ok = m.value('firehose_transform_records_total', { ...transformed, result: 'Ok' });
      const failed = m.value('firehose_transform_records_total', { ...transformed, result: 'ProcessingFailed' });
      // Every invocation by size (0.2 MiB: 205 of these records), none made small by the readers
      // of the other stream waiting for room in the shared 16 MB budget.
      expect(ok + failed).toBe(invocations * 205);
      expect(failed).toBeGreaterThanOrEqual(Math.floor((ok + failed) / 10) - 1);

      // The Grafana dashboard in config/ asks only for metrics that exist.
      const dashboard = JSON.parse(readFileSync(new URL('../config/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
      const asked = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\b(?:firehose|process|nodejs)_\w+/g) ?? [])));
      expect(asked.size).toBeGreaterThan(10);
      for (const name of asked) expect(m.text, `${name} (asked for by config/grafana-dashboard.json)`).toMatch(new RegExp(`^${name}[{ ]`, 'm'));

      // Phase 2: the endpoint stalls. 24 MB more than the 16 MB budget holds: the readers wait for it.
      stalled = true;
      await putAll(peers.kinesisClient, STREAM, Array.from({ length: 24 * 1024 }, (_, i) => record(10_000 + i)));
      await waitFor(async () => (await scrape()).value('firehose_delivery_data_freshness_seconds', http) > 8, 60_000, 'DataFreshness rising while stalled');
      await waitFor(async () => (await scrape()).value('firehose_kinesis_iterator_age_max_seconds', stream) > 5, 30_000, 'iterator age rising while the readers wait for budget');
      m = await scrape();
      expect(m.value('firehose_delivery_attempts_failed_total', http)).toBeGreaterThan(0);
      expect(m.value('firehose_budget_held_bytes')).toBeGreaterThan(0);
      expect(m.value('firehose_backpressure_paused_seconds_total')).toBeGreaterThan(0);
      const stalledFreshness = m.value('firehose_delivery_data_freshness_seconds', http);
      expect(stalledFreshness).toBeGreaterThan(freshAfterDelivery);

      // Phase 3: it recovers. Everything arrives; both figures fall back.
      stalled = false;
      const delivered = 27 * 1024;
      await waitFor(async () => (await scrape()).value('firehose_delivery_records_total', http) === delivered, 120_000, 'every transformed record delivered');
      await waitFor(async () => (await scrape()).value('firehose_kinesis_iterator_age_max_seconds', stream) < 3, 30_000, 'iterator age falling once the readers caught up');
      m = await scrape();
      expect(m.value('firehose_incoming_records_total', stream)).toBe(delivered);
      expect(m.value('firehose_delivery_bytes_total', http)).toBe(delivered * 1024);
      expect(m.value('firehose_error_output_records_total', stream)).toBe(0);
      expect(m.value('firehose_delivery_data_freshness_seconds', http)).toBeLessThan(stalledFreshness);
      for (const shard of ['shardId-000000000000', 'shardId-000000000001']) {
        expect(m.value('firehose_kinesis_iterator_age_seconds', { ...stream, shard })).toBeLessThan(3);
      }
      if (hasPromtool()) expect(spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' }).status).toBe(0);
      expect(new Set(receiver.delivered().map((b) => (JSON.parse(b.toString('utf8')) as { n: number }).n)).size).toBe(delivered);
    } finally {
      await service.stop();
      await receiver.stop();
    }
  }, 300_000);
});
