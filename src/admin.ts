import { once } from 'node:events';
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
import { readLeases } from './leases-cli.js';
import { renderStatusPage } from './status-page.js';
import { redisAnswers } from './redis/ping.js';
import { serviceMetrics } from './metrics/registry.js';
import { redact } from './secrets.js';

export interface AdminTarget {
  readonly config: ServiceConfig;
  readonly streams: readonly DeliveryStream[];
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  /** The DLQ's connection, shared by redrives started here. */
  readonly redis: Redis | undefined;
  /** The service's own connection, for readiness when the DLQ is off. */
  readonly readinessRedis?: Redis;
  readonly budget: ByteBudget;
  /** This worker's name in the fleet, for the status page. */
  readonly workerId?: string;
}

/** The status page's throughput line: one sample every 10 s, 15 minutes of them. */
const SAMPLE_SECONDS = 10;
const SAMPLES = (15 * 60) / SAMPLE_SECONDS;


/** Every stream's queue is named "dlq" under its own Redis prefix: Bull Board keys queues by name, so each gets its stream's. */
const BOARD_PREFIX = (q: DeadLetterQueue) => `${q.deliveryStreamName}:`;
const boardName = (q: DeadLetterQueue) => `${BOARD_PREFIX(q)}${q.queue.name}`;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const REDIS_CHECK_MS = 2_000;

/**
 * The admin endpoint: /healthz, /readyz, /health, /stats, /metrics (Prometheus text, named after Firehose's
 * CloudWatch metrics), the dead-letter queue (GET /dlq, POST /dlq/redrive, DELETE /dlq) and Bull
 * Board at /admin/queues. It binds to 127.0.0.1 unless told otherwise: it can purge data.
 */
export async function startAdmin(target: AdminTarget, requestedHost: string, port: number, log: Logger): Promise<{ url: string; reloaded(): void; close(): Promise<void> }> {
  const app = express();
  // Whatever a route answers (an error message, a dead letter's), no configured secret goes out in it.
  app.set('json replacer', (_key: string, value: unknown) => (typeof value === 'string' ? redact(value) : value));
  const token = target.config.runtime.admin.token;
  // Without a token, only this machine may reach it: it can purge data.
  const host = token || LOOPBACK.has(requestedHost) ? requestedHost : '127.0.0.1';
  if (host !== requestedHost) log.warn('admin endpoint: no runtime.admin.token is set, so it binds to 127.0.0.1 only, not the host asked for', { requested: requestedHost });

  // Delivered bytes per sample, per stream, for the status page's sparkline.
  const startedAt = Date.now();
  const throughput = new Map<DeliveryStream, number[]>(target.streams.map((s) => [s, []]));
  const lastDelivered = new Map<DeliveryStream, number>(target.streams.map((s) => [s, s.stats.bytesDelivered]));
  const sampler = setInterval(() => {
    // Streams come and go with reloads: a new one starts its line now, a gone one's is dropped.
    for (const s of throughput.keys()) if (!target.streams.includes(s)) throughput.delete(s);
    for (const s of target.streams) {
      const samples = throughput.get(s) ?? [];
      throughput.set(s, samples);
      samples.push(s.stats.bytesDelivered - (lastDelivered.get(s) ?? 0));
      lastDelivered.set(s, s.stats.bytesDelivered);
      if (samples.length > SAMPLES) samples.shift();
    }
  }, SAMPLE_SECONDS * 1000);
  sampler.unref();

  // Liveness and readiness answer anyone (an orchestrator's probe carries no token).
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });
  app.get('/readyz', (_req, res) => {
    void (async () => {
      const redis = target.redis ?? target.readinessRedis;
      const signal = AbortSignal.timeout(REDIS_CHECK_MS);
      const [redisOk, ...streams] = await Promise.all([redis ? redisAnswers(redis, REDIS_CHECK_MS) : true, ...target.streams.map((s) => s.probe(signal))]);
      const problems = [...(redisOk ? [] : [`Redis did not answer within ${REDIS_CHECK_MS} ms`]), ...streams.flat()];
      if (problems.length > 0) res.status(503).json({ status: 'not ready', problems });
      else res.json({ status: 'ready' });
    })();
  });

  app.use((req, res, next) => {
    // DNS rebinding: a page served under another name that resolves here is still refused.
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (!LOOPBACK.has(hostHeader) && hostHeader !== host) return res.status(421).json({ error: `this endpoint does not answer for host ${JSON.stringify(req.headers.host)}` });
    if (token && req.headers.authorization !== `Bearer ${token}`) return res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'needs Authorization: Bearer <runtime.admin.token>' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // No state change from another origin: a browser says where a request comes from.
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) return res.status(403).json({ error: `cross-origin ${req.method} refused (Origin ${origin})` });
      if (req.headers['sec-fetch-site'] !== undefined && req.headers['sec-fetch-site'] !== 'same-origin' && req.headers['sec-fetch-site'] !== 'none') {
        return res.status(403).json({ error: `cross-site ${req.method} refused` });
      }
    }
    // A repeated parameter is an error, never "every value".
    for (const [key, value] of Object.entries(req.query)) {
      if (Array.isArray(value)) return res.status(400).json({ error: `query parameter ${key} is given ${value.length} times; give it once` });
    }
    next();
  });
  const queues = (req: Request) => {
    const stream = typeof req.query.stream === 'string' ? req.query.stream : undefined;
    return target.deadLetterQueues.filter((q) => !stream || q.deliveryStreamName === stream);
  };
  const filter = (req: Request) => ({
    ...(typeof req.query.error === 'string' ? { errorCode: req.query.error } : {}),
    ...(typeof req.query.since === 'string' && !Number.isNaN(Date.parse(req.query.since)) ? { since: Date.parse(req.query.since) } : {}),
  });
  // The DLQ routes answer 503 at once while Redis is away, rather than hanging on it.
  const guard = (handler: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response) => {
    (async () => {
      if (target.redis && !(await redisAnswers(target.redis, REDIS_CHECK_MS))) {
        res.status(503).json({ error: `Redis did not answer within ${REDIS_CHECK_MS} ms` });
        return;
      }
      await handler(req, res);
    })().catch((err: unknown) => {
      // Part of a streamed answer is out: cut it, so the client sees it incomplete rather than whole.
      if (res.headersSent) res.destroy(err as Error);
      else res.status(500).json({ error: (err as Error).message });
    });
  };

  // The older summary: like /readyz for Redis (503 while it does not answer), with the streams running.
  app.get('/health', (_req, res) => {
    void (async () => {
      const redis = target.redis ?? target.readinessRedis;
      const up = !redis || (await redisAnswers(redis, REDIS_CHECK_MS));
      res.status(up ? 200 : 503).json({ status: up ? 'ok' : 'degraded', redis: up ? 'up' : `did not answer within ${REDIS_CHECK_MS} ms`, deliveryStreams: target.streams.map((s) => s.name) });
    })();
  });

  app.get('/stats', (_req, res) => {
    res.json(
      Object.fromEntries(
        target.streams.map((s) => [s.name, { ...s.stats, buffers: s.buffers, ...s.source.status() }]),
      ),
    );
  });

  // The status page: what an operator looks at when something is wrong.
  app.get('/', (_req, res) => {
    void (async () => {
      const redis = target.readinessRedis ?? target.redis;
      const reachable = redis !== undefined && (await redisAnswers(redis, REDIS_CHECK_MS));
      const leases = reachable ? await readLeases(target.config, redis).catch(() => undefined) : undefined;
      const streams = await Promise.all(
        target.streams.map(async (stream) => {
          const queue = target.deadLetterQueues.find((q) => q.deliveryStreamName === stream.name);
          const depth = queue && reachable ? await queue.count().catch(() => undefined) : undefined;
          return {
            stream,
            bufferSizeBytes: stream.bufferSizeBytes,
            throughput: throughput.get(stream) ?? [],
            dlqDepth: queue ? (depth ?? 0) : undefined,
            boardUrl: queue ? `/admin/queues/queue/${encodeURIComponent(boardName(queue))}` : undefined,
          };
        }),
      );
      res.type('html').send(
        renderStatusPage({
          workerId: target.workerId ?? 'this worker',
          now: Date.now(),
          startedAt,
          budget: { held: target.budget.held, limit: target.budget.limit, pausedMs: target.budget.pausedMs },
          streams,
          leases,
          sampleSeconds: SAMPLE_SECONDS,
          refreshSeconds: 5,
        }),
      );
    })().catch((err: unknown) => res.status(500).json({ error: (err as Error).message }));
  });

  // Who reads which shard, as `firehose leases --json` prints it (the same function).
  app.get('/leases', (_req, res) => {
    void (async () => {
      const redis = target.readinessRedis ?? target.redis;
      if (!redis || !(await redisAnswers(redis, REDIS_CHECK_MS))) {
        res.status(503).json({ error: `Redis did not answer within ${REDIS_CHECK_MS} ms` });
        return;
      }
      res.json(await readLeases(target.config, redis));
    })().catch((err: unknown) => res.status(500).json({ error: (err as Error).message }));
  });

  const metrics = serviceMetrics(target);
  app.get('/metrics', (_req, res) => {
    metrics
      .metrics()
      .then((text) => res.type(metrics.contentType).send(text))
      .catch((err: unknown) => res.status(500).json({ error: (err as Error).message }));
  });

  app.get(
    '/dlq',
    guard(async (req, res) => {
      // Streamed a page at a time, waiting for the client to take each: a 60 MB queue is never held whole,
      // however many ask at once. `limit` and `after` (an entry id) page through it.
      const limit = typeof req.query.limit === 'string' ? Number(req.query.limit) : Infinity;
      if (!(limit > 0)) {
        res.status(400).json({ error: `limit must be a positive number, got ${JSON.stringify(req.query.limit)}` });
        return;
      }
      const after = typeof req.query.after === 'string' ? req.query.after : undefined;
      const withData = req.query.data === '1';
      const write = async (text: string) => {
        if (!res.write(text)) await once(res, 'drain');
      };
      res.status(200).type('json');
      await write('{');
      let firstQueue = true;
      for (const q of queues(req)) {
        await write(`${firstQueue ? '' : ','}${JSON.stringify(q.deliveryStreamName)}:[`);
        firstQueue = false;
        let written = 0;
        let skipping = after !== undefined;
        pages: for await (const page of q.entries(filter(req))) {
          for (const e of page) {
            if (skipping) {
              skipping = e.id !== after;
              continue;
            }
            if (written >= limit || res.destroyed) break pages;
            const entry = { id: e.id, addedAt: new Date(e.addedAt).toISOString(), ...e.letter, data: withData ? e.letter.data : undefined, bytes: Buffer.byteLength(e.letter.data, 'base64') };
            await write(`${written === 0 ? '' : ','}${redact(JSON.stringify(entry))}`);
            written++;
          }
        }
        await write(']');
      }
      res.end('}');
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
  const boardQueues = () =>
    target.deadLetterQueues.map((q) => new BullMQAdapter(q.queue, { readOnlyMode: true, prefix: BOARD_PREFIX(q), displayName: `dlq ${q.deliveryStreamName}`, description: `dead letters of ${q.deliveryStreamName}` }));
  const boardApi = createBullBoard({ queues: boardQueues(), serverAdapter: board });
  app.use('/admin/queues', board.getRouter());

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(port, host, () => resolve(s));
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  log.info('admin endpoint listening', { url });
  return {
    url,
    reloaded: () => boardApi.replaceQueues(boardQueues()),
    close: () => {
      clearInterval(sampler);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
