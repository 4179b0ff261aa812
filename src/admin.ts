import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Request, type Response } from 'express';
import type { ServiceConfig } from './config.js';
import type { DeliveryStream } from './delivery-stream.js';
import type { Redis } from 'ioredis';
import type { ByteBudget } from './budget.js';
import type { DeadLetterQueue } from './dlq.js';
import type { Logger } from './log.js';
import { redrive } from './redrive.js';
import { LockHeld } from './redis/lock.js';

export interface AdminTarget {
  readonly config: ServiceConfig;
  readonly streams: readonly DeliveryStream[];
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  /** The DLQ's connection, shared by redrives started here. */
  readonly redis: Redis | undefined;
  readonly budget: ByteBudget;
}

interface ShardLag {
  readonly iteratorAgeMs: number;
  readonly millisBehindLatest: number;
}

const numberFrom = (status: Readonly<Record<string, unknown>>, key: string) => (typeof status[key] === 'number' ? (status[key] as number) : 0);

/**
 * The admin endpoint: /health, /stats, /metrics (Prometheus text, named after Firehose's
 * CloudWatch metrics), the dead-letter queue (GET /dlq, POST /dlq/redrive, DELETE /dlq) and Bull
 * Board at /admin/queues. It binds to 127.0.0.1 unless told otherwise: it can purge data.
 */
export async function startAdmin(target: AdminTarget, host: string, port: number, log: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  const queues = (req: Request) => {
    const stream = typeof req.query.stream === 'string' ? req.query.stream : undefined;
    return target.deadLetterQueues.filter((q) => !stream || q.deliveryStreamName === stream);
  };
  const filter = (req: Request) => ({
    ...(typeof req.query.error === 'string' ? { errorCode: req.query.error } : {}),
    ...(typeof req.query.since === 'string' && !Number.isNaN(Date.parse(req.query.since)) ? { since: Date.parse(req.query.since) } : {}),
  });
  const guard = (handler: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response) => {
    handler(req, res).catch((err: unknown) => res.status(500).json({ error: (err as Error).message }));
  };

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', deliveryStreams: target.streams.map((s) => s.name) });
  });

  app.get('/stats', (_req, res) => {
    res.json(
      Object.fromEntries(
        target.streams.map((s) => [s.name, { ...s.stats, buffers: s.buffers, ...s.source.status() }]),
      ),
    );
  });

  app.get('/metrics', (_req, res) => {
    const lines: string[] = [];
    const metric = (name: string, help: string, value: (s: DeliveryStream, i: number) => number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${name.endsWith('_total') ? 'counter' : 'gauge'}`);
      target.streams.forEach((s, i) => lines.push(`${name}{delivery_stream="${s.name}"} ${value(s, i)}`));
    };
    metric('firehose_data_read_from_kinesis_stream_records_total', 'DataReadFromKinesisStream.Records', (s) => s.stats.recordsRead);
    metric('firehose_data_read_from_kinesis_stream_bytes_total', 'DataReadFromKinesisStream.Bytes', (s) => s.stats.bytesRead);
    metric('firehose_delivery_records_total', 'DeliveryTo*.Records', (s) => s.stats.recordsDelivered);
    metric('firehose_delivery_bytes_total', 'DeliveryTo*.Bytes', (s) => s.stats.bytesDelivered);
    metric('firehose_delivery_objects_total', 'DeliveryTo*.Success (objects or requests)', (s) => s.stats.objectsDelivered);
    metric('firehose_delivery_attempts_failed_total', 'failed delivery attempts (retried)', (s) => s.stats.deliveryAttemptsFailed);
    metric('firehose_error_output_records_total', 'records written to the error output', (s) => s.stats.recordsToErrorOutput);
    metric('firehose_dead_letter_records_total', 'records parked in the dead-letter queue', (s) => s.stats.recordsToDeadLetterQueue);
    metric('firehose_dropped_records_total', 'records a transform dropped (Dropped)', (s) => s.stats.recordsDropped);
    metric('firehose_partition_count_exceeded_total', 'PartitionCountExceeded', (s) => s.stats.partitionCountExceeded);
    metric('firehose_records_held_total', 'records whose positions stay held after an encoding failure or an unexpected error (read again after a restart)', (s) => s.stats.recordsHeld);
    metric('firehose_backup_records_total', 'copies of parked records written to the backup bucket (BackupToS3.Records)', (s) => s.stats.backupCopies);
    metric('firehose_backpressure_seals_total', 'buffers sealed early because readers waited for budget', (s) => s.stats.backpressureSeals);
    metric('firehose_buffered_bytes', 'budget bytes the open buffers hold (compressed once a chunk is compressed)', (s) => s.buffers.bytes);
    metric('firehose_active_partitions', 'partitions holding records (PartitionCount)', (s) => s.buffers.partitions);
    metric('firehose_iterator_age_max_seconds', 'largest GetRecords iterator age since start', (s) => numberFrom(s.source.status(), 'maxIteratorAgeMs') / 1000);
    // Per shard, as of its last read: these go down again once a shard catches up.
    const perShard = (name: string, help: string, value: (lag: ShardLag) => number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
      for (const s of target.streams) {
        const shards = (s.source.status().shards ?? {}) as Record<string, ShardLag>;
        for (const [shard, lag] of Object.entries(shards)) lines.push(`${name}{delivery_stream="${s.name}",shard="${shard}"} ${value(lag) / 1000}`);
      }
    };
    perShard('firehose_kinesis_iterator_age_seconds', 'GetRecords.IteratorAge: how old the newest record of the last read was', (lag) => lag.iteratorAgeMs);
    perShard('firehose_kinesis_behind_latest_seconds', 'MillisBehindLatest of the last read', (lag) => lag.millisBehindLatest);
    lines.push(
      '# HELP firehose_budget_limit_bytes runtime.memoryBudgetInMBs, in bytes',
      '# TYPE firehose_budget_limit_bytes gauge',
      `firehose_budget_limit_bytes ${target.budget.limit}`,
      '# HELP firehose_budget_held_bytes what memory holds of records now, against the budget',
      '# TYPE firehose_budget_held_bytes gauge',
      `firehose_budget_held_bytes ${target.budget.held}`,
      '# HELP firehose_backpressure_paused_seconds_total time readers waited for budget',
      '# TYPE firehose_backpressure_paused_seconds_total counter',
      `firehose_backpressure_paused_seconds_total ${target.budget.pausedMs / 1000}`,
    );
    res.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });

  app.get(
    '/dlq',
    guard(async (req, res) => {
      const out: Record<string, unknown[]> = {};
      for (const q of queues(req)) {
        const entries: unknown[] = [];
        for await (const page of q.entries(filter(req))) {
          for (const e of page) {
            entries.push({ id: e.id, addedAt: new Date(e.addedAt).toISOString(), ...e.letter, data: req.query.data === '1' ? e.letter.data : undefined, bytes: Buffer.from(e.letter.data, 'base64').length });
          }
        }
        out[q.deliveryStreamName] = entries;
      }
      res.json(out);
    }),
  );

  app.post(
    '/dlq/redrive',
    guard(async (req, res) => {
      const out: Record<string, { redriven: number; keptInQueue: number; total: number }> = {};
      for (const q of queues(req)) {
        const stream = target.config.deliveryStreams.find((s) => s.deliveryStreamName === q.deliveryStreamName)!;
        try {
          const result = await redrive(target.config, stream, { filter: filter(req), log, ...(target.redis ? { dlqRedis: target.redis } : {}) });
          out[q.deliveryStreamName] = { redriven: result.removed, keptInQueue: result.keptInQueue, total: result.total };
        } catch (err) {
          if (!(err instanceof LockHeld)) throw err;
          res.status(409).json({ error: err.message });
          return;
        }
      }
      res.json(out);
    }),
  );

  app.delete(
    '/dlq',
    guard(async (req, res) => {
      const out: Record<string, { purged: number }> = {};
      for (const q of queues(req)) {
        let purged = 0;
        for await (const page of q.entries(filter(req))) purged += await q.remove(page);
        out[q.deliveryStreamName] = { purged };
      }
      res.json(out);
    }),
  );

  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  // Read-only: removing entries there would bypass the byte bound's counter; redrive and purge go through /dlq.
  createBullBoard({
    queues: target.deadLetterQueues.map((q) => new BullMQAdapter(q.queue, { readOnlyMode: true, displayName: `dlq ${q.deliveryStreamName}`, description: `dead letters of ${q.deliveryStreamName}` })),
    serverAdapter: board,
  });
  app.use('/admin/queues', board.getRouter());

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, host, () => resolve(s));
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host}:${address.port}`;
  log.info('admin endpoint listening', { url });
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
