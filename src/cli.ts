#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { MissingPeerError } from './dev/peers.js';
import { createLogger } from './log.js';
import { startService } from './service.js';

const usage = `firehose — a self-hosted delivery pipeline (Kinesis → buffer → GZIP → S3)

Usage:
  firehose run --config FILE        run the delivery streams of FILE until SIGTERM/SIGINT
  firehose validate --config FILE   check FILE; print every problem with its path
  firehose dev [--shards N] [--rate RECORDS_PER_S] [--max-objects N]
                                    local Kinesis, S3 and Redis, a sample producer, the pipeline
  firehose dlq list|show|redrive|purge --config FILE [--stream NAME] [--error CODE] [--since ISO-TIME] [--id ID]
                                    the dead-letter queue: inspect, redeliver, or drop parked records
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...afterCommand] = argv;
  // `firehose dlq <action> …`: the action is a word, not an option.
  const action = command === 'dlq' ? afterCommand[0] : undefined;
  const rest = command === 'dlq' ? afterCommand.slice(1) : afterCommand;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string', short: 'c' },
      shards: { type: 'string', default: '4' },
      rate: { type: 'string', default: '1000' },
      'max-objects': { type: 'string', default: '0' },
      stream: { type: 'string' },
      error: { type: 'string' },
      since: { type: 'string' },
      id: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !command || command === 'help') {
    process.stdout.write(usage);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'validate': {
      const config = await loadConfig(requireConfig(values.config));
      process.stdout.write(`${values.config}: ok (${config.deliveryStreams.length} delivery stream(s))\n`);
      return 0;
    }
    case 'run':
      return run(requireConfig(values.config));
    case 'dlq': {
      if (!action) throw new UsageError('firehose dlq needs an action: list, show, redrive or purge');
      const since = values.since === undefined ? undefined : Date.parse(values.since);
      if (since !== undefined && Number.isNaN(since)) throw new UsageError(`--since must be an ISO-8601 time, got ${JSON.stringify(values.since)}`);
      const { runDlqCommand } = await import('./dlq-cli.js');
      return runDlqCommand(action, await loadConfig(requireConfig(values.config)), {
        ...(values.stream ? { stream: values.stream } : {}),
        filter: {
          ...(values.error ? { errorCode: values.error } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(values.id ? { id: values.id } : {}),
        },
        out: (line) => process.stdout.write(line + '\n'),
        progress: { write: (text) => process.stderr.write(text), isTTY: process.stderr.isTTY === true },
      });
    }
    case 'dev': {
      const { runDevMode } = await import('./dev/dev-mode.js');
      return runDevMode({
        shards: positive(values.shards, '--shards'),
        recordsPerSecond: positive(values.rate, '--rate'),
        maxObjects: Number(values['max-objects']),
        out: (line) => process.stdout.write(line + '\n'),
      });
    }
    default:
      process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${usage}`);
      return 2;
  }
}

async function run(configPath: string): Promise<number> {
  const config = await loadConfig(configPath);
  const log = createLogger();
  const service = await startService(config, { log });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info('stopping: flushing buffers and delivering', { signal });
  // A second signal exits at once: nothing is lost, the records after the last checkpoint are read again.
  const exitNow = () => process.exit(130);
  process.once('SIGTERM', exitNow);
  process.once('SIGINT', exitNow);
  return (await service.stop()) ? 0 : 1;
}

function requireConfig(path: string | undefined): string {
  if (!path) throw new UsageError('--config FILE is required');
  return path;
}

function positive(value: string | undefined, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

class UsageError extends Error {}

/** Exits once stdout and stderr are flushed: on a pipe, process.exit() would drop pending output. */
function exit(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

main(process.argv.slice(2)).then(exit, (err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    return exit(2);
  }
  if (err instanceof UsageError || err instanceof MissingPeerError || ((err as Error)?.name === 'TypeError' && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`firehose: ${(err as Error).message}\n`);
    return exit(2);
  }
  process.stderr.write(`firehose: ${(err as Error)?.stack ?? String(err)}\n`);
  exit(1);
});
