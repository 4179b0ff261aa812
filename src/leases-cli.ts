import type { Redis } from 'ioredis';
import type { ServiceConfig } from './config.js';
import { LeaseTable } from './leases/table.js';
import { redisConnection } from './redis/connection.js';
import { redisAnswers, redisWhere } from './redis/ping.js';

const REDIS_WAIT_MS = 5_000;

/** One shard's lease as `firehose leases --json` prints it (scripts rely on these fields). */
export interface LeaseRow {
  deliveryStream: string;
  shardId: string;
  owner: string | null;
  epoch: number;
  checkpoint: string | null;
  expiresAt: string | null;
  parents: string[];
  state: 'open' | 'ended';
}

/** Every shard lease of every delivery stream of a configuration, as stored in Redis now. */
export async function readLeases(config: ServiceConfig, redis: Redis): Promise<LeaseRow[]> {
  const rows: LeaseRow[] = [];
  for (const stream of config.deliveryStreams) {
    const name = stream.deliveryStreamName;
    const table = new LeaseTable(redis, name, stream.source.plugin.identity(stream.source.config));
    const [view, checkpoints] = await Promise.all([table.view(), table.checkpoints()]);
    for (const lease of view.leases) {
      const owned = lease.owner !== undefined;
      rows.push({
        deliveryStream: name,
        shardId: lease.shardId,
        owner: lease.owner ?? null,
        epoch: lease.epoch,
        checkpoint: checkpoints[lease.shardId] ?? null,
        expiresAt: owned ? new Date(lease.expiresAt).toISOString() : null,
        parents: [...lease.parents],
        state: lease.state,
      });
    }
  }
  return rows;
}

/** `firehose leases`: who reads which shard, under which epoch, until when. Returns the exit code. */
export async function runLeasesCommand(config: ServiceConfig, options: { json: boolean; out: (line: string) => void }): Promise<number> {
  const redis = redisConnection(config.redis, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    if (!(await redisAnswers(redis, REDIS_WAIT_MS))) {
      options.out(`cannot reach Redis at ${redisWhere(config.redis.url)} within ${REDIS_WAIT_MS / 1000} s; is it running, and is redis.url right?`);
      return 2;
    }
    const rows = await readLeases(config, redis);
    if (options.json) {
      options.out(JSON.stringify(rows));
      return 0;
    }
    const now = Date.now();
    const table = [['DELIVERY STREAM', 'SHARD', 'OWNER', 'EPOCH', 'STATE', 'EXPIRES IN', 'PARENTS', 'CHECKPOINT']];
    for (const r of rows) {
      const expiresIn = r.expiresAt === null ? '-' : `${((Date.parse(r.expiresAt) - now) / 1000).toFixed(1)} s`;
      table.push([r.deliveryStream, r.shardId, r.owner ?? '(none)', String(r.epoch), r.state, expiresIn, r.parents.join(',') || '-', r.checkpoint ?? '-']);
    }
    const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
    for (const row of table) options.out(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
    if (rows.length === 0) options.out('(no leases yet: no worker has run these delivery streams)');
    return 0;
  } finally {
    redis.disconnect();
  }
}
