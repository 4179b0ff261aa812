import type { ServiceConfig } from './config.js';
import { DeadLetterQueue, dlqConnection, type DeadLetterFilter } from './dlq.js';
import { createLogger, levelFromEnv } from './log.js';
import { ProgressReporter } from './progress.js';
import { redrive } from './redrive.js';
import { LockHeld } from './redis/lock.js';
import { redisAnswers, redisWhere } from './redis/ping.js';

const REDIS_WAIT_MS = 5_000;
import { MiB } from './units.js';

export interface DlqOptions {
  readonly stream?: string;
  readonly filter: DeadLetterFilter;
  readonly out: (line: string) => void;
  /** Where the redrive's progress goes (a bar on a terminal, lines otherwise). */
  readonly progress?: { write(text: string): void; isTTY: boolean };
}

const ACTIONS = ['list', 'show', 'redrive', 'purge'];

/** `firehose dlq list|show|redrive|purge`: inspect and act on parked records. Returns the exit code. */
export async function runDlqCommand(action: string, config: ServiceConfig, options: DlqOptions): Promise<number> {
  if (!ACTIONS.includes(action)) {
    options.out(`unknown dlq action ${JSON.stringify(action)} (list, show, redrive, purge)`);
    return 2;
  }
  const streams = config.deliveryStreams.filter((s) => !options.stream || s.deliveryStreamName === options.stream);
  if (streams.length === 0) {
    options.out(`no delivery stream named ${JSON.stringify(options.stream)} in the configuration`);
    return 2;
  }
  const redis = dlqConnection(config.redis);
  redis.on('error', () => undefined);
  if (!(await redisAnswers(redis, REDIS_WAIT_MS))) {
    redis.disconnect();
    options.out(`cannot reach Redis at ${redisWhere(config.redis.url)} within ${REDIS_WAIT_MS / 1000} s; is it running, and is redis.url right?`);
    return 2;
  }
  const maxBytes = config.runtime.deadLetterQueue.maxSizeInMBs * MiB;
  let code = 0;
  let found = 0;
  try {
    for (const stream of streams) {
      const name = stream.deliveryStreamName;
      if (action === 'redrive') {
        code = Math.max(code, await redriveOne(config, stream, options, redis));
        continue;
      }
      const dlq = new DeadLetterQueue(redis, name, maxBytes);
      try {
        let count = 0;
        for await (const page of dlq.entries(options.filter)) {
          count += page.length;
          if (action === 'purge') await dlq.remove(page);
          for (const e of page) {
            const l = e.letter;
            if (action === 'list') {
              options.out(
                `${e.id}  ${name}  ${l.destination}  ${l.errorCode}  attempts=${l.attemptsMade}  last=${new Date(l.lastAttemptAt).toISOString()}  bytes=${Buffer.from(l.data, 'base64').length}  ${l.errorMessage.slice(0, 120)}`,
              );
            } else if (action === 'show') {
              const data = Buffer.from(l.data, 'base64');
              options.out(JSON.stringify({ id: e.id, addedAt: new Date(e.addedAt).toISOString(), ...l, dataPreview: data.toString('utf8').slice(0, 2000) }, null, 2));
            }
          }
        }
        found += count;
        if (action === 'list') options.out(`${name}: ${count} dead letter(s)`);
        if (action === 'purge') options.out(`${name}: purged ${count} dead letter(s)`);
      } finally {
        await dlq.close();
      }
    }
  } finally {
    redis.disconnect();
  }
  if (action === 'show' && found === 0) {
    options.out(`no matching dead letter${options.stream ? ` in ${options.stream}` : ''}`);
    return 1;
  }
  return code;
}

async function redriveOne(config: ServiceConfig, stream: ServiceConfig['deliveryStreams'][number], options: DlqOptions, dlqRedis: import('ioredis').Redis): Promise<number> {
  const name = stream.deliveryStreamName;
  const bar = options.progress ? new ProgressReporter((t) => options.progress!.write(t), options.progress.isTTY, `redrive ${name}`) : undefined;
  try {
    const result = await redrive(config, stream, {
      filter: options.filter,
      dlqRedis,
      log: createLogger(levelFromEnv('warn')),
      onProgress: (counts, total) => bar?.update({ done: counts.removed + counts.keptInQueue, total, bytes: counts.bytes, unit: 'entries' }),
    });
    bar?.finish({ done: result.removed + result.keptInQueue, total: result.total, bytes: result.bytes, unit: 'entries' });
    options.out(`${name}: redrove ${result.removed} of ${result.total} dead letter(s)${result.keptInQueue > 0 ? `; ${result.keptInQueue} failed again and stay parked with their attempts raised` : ''}`);
    return result.clean && result.keptInQueue === 0 && result.removed === result.total ? 0 : 1;
  } catch (err) {
    if (err instanceof LockHeld) {
      options.out(`${name}: ${err.message}`);
      return 3;
    }
    throw err;
  }
}
