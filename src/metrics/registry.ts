import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { ByteBudget } from '../budget.js';
import type { DeliveryStream } from '../delivery-stream.js';
import type { DeadLetterQueue } from '../dlq.js';
import { packageVersion } from '../version.js';
import { DurationHistogram } from './histogram.js';

type Labels = Record<string, string>;
interface Sample {
  readonly labels: Labels;
  readonly value: number;
  /** For a histogram's _bucket, _sum and _count lines. */
  readonly metricName?: string;
}
type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose values are read at scrape time from the counters the pipeline keeps anyway
 * (DeliveryStream.stats, the source's status, the budget): one source of truth for /stats, the
 * status page and /metrics, and nothing to keep in step on the hot path.
 */
class ReadAtScrape {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    private readonly read: () => Sample[] | Promise<Sample[]>,
  ) {}

  async get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: await this.read() };
  }
}

export interface MetricsTarget {
  readonly streams: readonly DeliveryStream[];
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  readonly budget: ByteBudget;
}

interface ShardLag {
  readonly iteratorAgeMs: number;
  readonly millisBehindLatest: number;
}

/** How long a scrape waits for Redis to tell the DLQ's depth; a scrape never hangs on it. */
const DLQ_SIZE_TIMEOUT_MS = 1_000;

const numberFrom = (status: Readonly<Record<string, unknown>>, key: string) => (typeof status[key] === 'number' ? (status[key] as number) : 0);
const shardsOf = (s: DeliveryStream) => (s.source.status().shards ?? {}) as Record<string, ShardLag>;
const leaseStat = (s: DeliveryStream, key: string) => numberFrom((s.source.status().leases ?? {}) as Record<string, unknown>, key);


/** The histogram's exposition lines: cumulative buckets, +Inf, sum and count. */
function histogramSamples(name: string, labels: Labels, h: DurationHistogram): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  DurationHistogram.BUCKETS.forEach((le, i) => {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
  out.push({ metricName: `${name}_sum`, labels, value: h.sumSeconds });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

/**
 * The service's Prometheus registry: Firehose's and Kinesis' CloudWatch metrics under Prometheus
 * names (README, "Metrics", maps each), the fleet's leases, the budget, the DLQ, process and Node
 * metrics, and build_info. One registry per admin endpoint, so two services in one process (tests)
 * never share figures.
 */
export function serviceMetrics(target: MetricsTarget): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const add = (name: string, help: string, type: MetricType, read: () => Sample[] | Promise<Sample[]>) =>
    registry.registerMetric(new ReadAtScrape(name, help, type, read) as unknown as Metric);
  // prom-client names these gauges *_total, which promtool (rightly) refuses: one gauge under a gauge's name instead.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_requests', 'nodejs_active_resources']) {
    registry.removeSingleMetric(name);
  }
  add('nodejs_active_resources', 'resources keeping the event loop alive (process.getActiveResourcesInfo()), by type', 'gauge', () => {
    const byType = new Map<string, number>();
    for (const type of process.getActiveResourcesInfo()) byType.set(type, (byType.get(type) ?? 0) + 1);
    return [...byType].map(([type, value]) => ({ labels: { type }, value }));
  });

  const stream = (s: DeliveryStream): Labels => ({ delivery_stream: s.name });
  const delivery = (s: DeliveryStream): Labels => ({ delivery_stream: s.name, destination: s.destinationLabel });
  const perStream = (name: string, help: string, type: MetricType, value: (s: DeliveryStream) => number, labels = stream) =>
    add(name, help, type, () => target.streams.map((s) => ({ labels: labels(s), value: value(s) })));

  const version = packageVersion();
  add('firehose_build_info', 'the running build: version and Node.js version (always 1)', 'gauge', () => [
    { labels: { version, node_version: process.versions.node }, value: 1 },
  ]);

  // What came in.
  perStream('firehose_incoming_records_total', 'IncomingRecords: records the source handed on', 'counter', (s) => s.stats.recordsRead);
  perStream('firehose_incoming_bytes_total', 'IncomingBytes: bytes of the records the source handed on', 'counter', (s) => s.stats.bytesRead);
  perStream('firehose_data_read_from_kinesis_stream_records_total', 'DataReadFromKinesisStream.Records', 'counter', (s) => s.stats.recordsRead);
  perStream('firehose_data_read_from_kinesis_stream_bytes_total', 'DataReadFromKinesisStream.Bytes', 'counter', (s) => s.stats.bytesRead);
  perStream('firehose_kinesis_throttled_get_records_total', 'ThrottledGetRecords: GetRecords calls refused for the shard read limits (retried)', 'counter', (s) =>
    numberFrom(s.source.status(), 'throttledGetRecords'),
  );
  perStream('firehose_kinesis_get_records_read_by_sdk_total', 'GetRecords answers the byte decoder declined, read again by the SDK deserializer', 'counter', (s) =>
    numberFrom(s.source.status(), 'responsesReadBySdk'),
  );
  // Per shard as of its last read, so they fall again once a shard catches up (an alert clears).
  const perShard = (name: string, help: string, value: (lag: ShardLag) => number) =>
    add(name, help, 'gauge', () =>
      target.streams.flatMap((s) => Object.entries(shardsOf(s)).map(([shard, lag]) => ({ labels: { delivery_stream: s.name, shard }, value: value(lag) / 1000 }))),
    );
  perShard('firehose_kinesis_iterator_age_seconds', 'GetRecords.IteratorAgeMilliseconds: how old the newest record of the last read was', (lag) => lag.iteratorAgeMs);
  perShard('firehose_kinesis_behind_latest_seconds', 'KinesisMillisBehindLatest: how far the last read was behind the tip of its shard', (lag) => lag.millisBehindLatest);
  perStream('firehose_kinesis_iterator_age_max_seconds', 'GetRecords.IteratorAgeMilliseconds (Maximum): the largest iterator age over the shards this worker reads, now', 'gauge', (s) =>
    Math.max(0, ...Object.values(shardsOf(s)).map((lag) => lag.iteratorAgeMs)) / 1000,
  );

  // Transform (ExecuteProcessing) and conversion.
  add('firehose_execute_processing_duration_seconds', 'ExecuteProcessing.Duration: how long each transform invocation took', 'histogram', () =>
    target.streams.flatMap((s) => (s.transform ? histogramSamples('firehose_execute_processing_duration_seconds', stream(s), s.transform.stats.durations) : [])),
  );
  add('firehose_execute_processing_invocations_total', 'ExecuteProcessing.Success: transform invocations by outcome (a failed one is retried numberOfRetries times)', 'counter', () =>
    target.streams.flatMap((s) =>
      s.transform
        ? [
            // Finished ones only (each is in the histogram once it answered or failed), not those under way.
            { labels: { ...stream(s), outcome: 'success' }, value: s.transform.stats.durations.count - s.transform.stats.failedInvocations },
            { labels: { ...stream(s), outcome: 'failure' }, value: s.transform.stats.failedInvocations },
          ]
        : [],
    ),
  );
  add('firehose_transform_records_total', 'records by the result the transform gave them (Ok, Dropped, ProcessingFailed)', 'counter', () =>
    target.streams.flatMap((s) =>
      s.transform
        ? [
            { labels: { ...stream(s), result: 'Ok' }, value: s.transform.stats.recordsTransformed },
            { labels: { ...stream(s), result: 'Dropped' }, value: s.transform.stats.recordsDropped },
            { labels: { ...stream(s), result: 'ProcessingFailed' }, value: s.transform.stats.recordsFailed },
          ]
        : [],
    ),
  );
  perStream('firehose_dropped_records_total', 'records a transform dropped (Dropped): counted, not delivered', 'counter', (s) => s.stats.recordsDropped);
  perStream('firehose_succeed_conversion_records_total', 'SucceedConversion.Records', 'counter', (s) => s.stats.succeededConversionRecords);
  perStream('firehose_succeed_conversion_bytes_total', 'SucceedConversion.Bytes', 'counter', (s) => s.stats.succeededConversionBytes);
  perStream('firehose_failed_conversion_records_total', 'FailedConversion.Records: records sent to the error output as format-conversion-failed', 'counter', (s) => s.stats.failedConversionRecords);
  perStream('firehose_failed_conversion_bytes_total', 'FailedConversion.Bytes', 'counter', (s) => s.stats.failedConversionBytes);

  // Buffers and partitions.
  perStream('firehose_partitions', 'PartitionCount: partitions holding records now', 'gauge', (s) => s.buffers.partitions);
  perStream('firehose_partition_count_exceeded_total', 'PartitionCountExceeded: times a new partition waited for an open one to be sealed early', 'counter', (s) => s.stats.partitionCountExceeded);
  perStream('firehose_buffered_bytes', 'budget bytes the open buffers hold (compressed once a chunk is compressed)', 'gauge', (s) => s.buffers.bytes);
  perStream('firehose_backpressure_seals_total', 'buffers sealed early because readers waited for budget', 'counter', (s) => s.stats.backpressureSeals);

  // Delivery, per destination.
  perStream('firehose_delivery_records_total', 'DeliveryTo<destination>.Records', 'counter', (s) => s.stats.recordsDelivered, delivery);
  perStream('firehose_delivery_bytes_total', 'DeliveryTo<destination>.Bytes', 'counter', (s) => s.stats.bytesDelivered, delivery);
  perStream('firehose_delivery_objects_total', 'DeliveryTo<destination>.Success: objects or requests delivered', 'counter', (s) => s.stats.objectsDelivered, delivery);
  perStream('firehose_delivery_attempts_failed_total', 'failed delivery attempts (each is retried until retryOptions.durationInSeconds)', 'counter', (s) => s.stats.deliveryAttemptsFailed, delivery);
  perStream('firehose_delivery_data_freshness_seconds', 'DeliveryTo<destination>.DataFreshness: how long the oldest record not yet delivered has been in the stream', 'gauge', (s) => s.dataFreshnessMs() / 1000, delivery);
  perStream('firehose_backup_to_s3_records_total', 'BackupToS3.Records: source record backup copies (S3BackupMode Enabled) and copies of parked records written to the backup bucket', 'counter', (s) => s.stats.sourceBackupRecordsWritten + s.stats.backupCopies, delivery);
  perStream('firehose_backup_to_s3_bytes_total', 'BackupToS3.Bytes: bytes of source record backup copies written', 'counter', (s) => s.stats.sourceBackupBytesWritten, delivery);

  // Where records end when they are not delivered.
  perStream('firehose_error_output_records_total', 'records written to the error output (processing-failed, format-conversion-failed, …)', 'counter', (s) => s.stats.recordsToErrorOutput);
  perStream('firehose_dead_letter_records_total', 'records parked in the dead-letter queue', 'counter', (s) => s.stats.recordsToDeadLetterQueue);
  perStream('firehose_records_held_total', 'records whose positions stay held after an encoding failure or an unexpected error (read again after a restart)', 'counter', (s) => s.stats.recordsHeld);
  const dlqSizes = async () => {
    const sizes = await Promise.all(
      target.deadLetterQueues.map(async (q) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), DLQ_SIZE_TIMEOUT_MS)));
        const size = await Promise.race([q.size().catch(() => undefined), late]).finally(() => clearTimeout(timer));
        return size && { labels: { delivery_stream: q.deliveryStreamName }, size };
      }),
    );
    return sizes.filter((s) => s !== undefined);
  };
  add('firehose_dlq_depth', 'entries in the dead-letter queue now (left out while Redis does not answer)', 'gauge', async () => (await dlqSizes()).map((s) => ({ labels: s.labels, value: s.size.entries })));
  add('firehose_dlq_bytes', 'bytes of record data the dead-letter queue holds now, against runtime.deadLetterQueue.maxSizeInMBs', 'gauge', async () =>
    (await dlqSizes()).map((s) => ({ labels: s.labels, value: s.size.bytes })),
  );

  // Exactly-once.
  perStream('firehose_exactly_once_objects_adopted_total', 'exactly-once objects found already written by an earlier attempt or owner, and adopted', 'counter', (s) => s.stats.objectsAdopted);
  perStream('firehose_exactly_once_batches_reformed_total', 'exactly-once batches re-formed from an intent an earlier attempt recorded', 'counter', (s) => s.stats.batchesReformed);
  perStream('firehose_exactly_once_batches_fenced_total', 'exactly-once batches not written or not committed because their lease had moved', 'counter', (s) => s.stats.batchesFenced);

  // The fleet: this worker's side of the shard leases.
  perStream('firehose_leases_held', 'shard leases this worker holds', 'gauge', (s) => Object.keys(shardsOf(s)).length);
  perStream('firehose_lease_takes_total', 'leases this worker took (free, expired or overdue hand-offs)', 'counter', (s) => leaseStat(s, 'taken'));
  perStream('firehose_lease_forced_takes_total', 'leases taken because their owner did not hand them over within a lease duration', 'counter', (s) => leaseStat(s, 'forcedTakes'));
  perStream('firehose_lease_hand_offs_total', 'leases this worker handed over after checkpointing what it held of the shard', 'counter', (s) => leaseStat(s, 'handedOff'));
  perStream('firehose_lease_losses_total', 'leases this worker found taken by another (it stopped reading those shards)', 'counter', (s) => leaseStat(s, 'lost'));
  perStream('firehose_lease_fenced_writes_refused_total', 'checkpoint writes refused because their lease epoch was stale', 'counter', (s) => leaseStat(s, 'fencedWritesRefused'));
  perStream('firehose_lease_records_in_flight_at_loss_total', 'records not yet at an end when their lease moved: the next owner reads them again (possible duplicates)', 'counter', (s) => leaseStat(s, 'recordsInFlightAtLeaseLoss'));

  // The process's byte budget.
  add('firehose_budget_limit_bytes', 'runtime.memoryBudgetInMBs, in bytes', 'gauge', () => [{ labels: {}, value: target.budget.limit }]);
  add('firehose_budget_held_bytes', 'what memory holds of records now, against the budget', 'gauge', () => [{ labels: {}, value: target.budget.held }]);
  add('firehose_backpressure_paused_seconds_total', 'time readers waited for budget', 'counter', () => [{ labels: {}, value: target.budget.pausedMs / 1000 }]);
  return registry;
}
