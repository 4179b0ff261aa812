import { randomBytes, randomUUID } from 'node:crypto';

const WORDS =
  'the a request user session cache miss hit timeout retry upstream downstream shard buffer flush record stream delivery latency error warning connection pool worker queue token expired refreshed order payment invoice customer region deploy rollback config feature flag enabled disabled throttled backoff healthy degraded'.split(
    ' ',
  );
const LEVELS = ['DEBUG', 'INFO', 'INFO', 'INFO', 'WARN', 'ERROR'];
const SERVICES = ['checkout', 'search', 'auth', 'catalog', 'payments', 'gateway'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'];
const PATHS = ['/api/v1/orders', '/api/v1/users', '/api/v1/search', '/health', '/api/v2/cart', '/api/v1/payments'];
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64)', 'curl/8.5.0', 'okhttp/4.12.0', 'python-requests/2.32.3', 'Go-http-client/2.0'];

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/**
 * A realistic ~1 KB JSON log record (NOTES.md's reference shape): random ids keep it from
 * compressing better than real logs do.
 */
export function sampleLogRecord(time = Date.now()): string {
  const words: string[] = [];
  const count = 40 + Math.floor(Math.random() * 44);
  for (let i = 0; i < count; i++) words.push(pick(WORDS));
  return JSON.stringify({
    timestamp: new Date(time).toISOString(),
    level: pick(LEVELS),
    service: pick(SERVICES),
    host: `ip-10-0-${Math.floor(Math.random() * 255)}-${Math.floor(Math.random() * 255)}`,
    pid: 1000 + Math.floor(Math.random() * 30000),
    trace_id: hex(16),
    span_id: hex(8),
    request_id: randomUUID(),
    http: {
      method: pick(METHODS),
      path: pick(PATHS),
      status: pick([200, 200, 200, 201, 204, 301, 400, 404, 500, 503]),
      latency_ms: Math.round(Math.random() * 250000) / 100,
      bytes: Math.floor(Math.random() * 50000),
      client_ip: `${Math.floor(Math.random() * 223) + 1}.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 255)}`,
      user_agent: pick(AGENTS),
    },
    user: { id: `u-${Math.floor(Math.random() * 1e6)}`, tenant: `t-${Math.floor(Math.random() * 50)}` },
    message: words.join(' '),
  });
}
