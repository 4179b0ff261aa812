#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { MissingPeerError } from './dev/peers.js';
import { LogSettingError, createLogger, formatFromEnv, levelFromEnv } from './log.js';
import { packageVersion } from './version.js';
import { startService } from './service.js';

const usage = `firehose — a self-hosted delivery pipeline (Kinesis → transforms → GZIP/Parquet → S3, HTTP endpoints, OpenSearch)

Usage: firehose <command> [options]

Commands:
  run       run the delivery streams of a configuration until SIGTERM/SIGINT
  validate  check a configuration; print every problem with its path
  dev       local Kinesis, S3 and Redis, a sample producer and the pipeline (npm start)
  dlq       the dead-letter queue: list, show, redrive or purge parked records
  leases    who reads which shard: owner, epoch, checkpoint, expiry, parents, state
  replay    replay a time range of the S3 archive through a delivery stream, resumably
  produce   sample records into a Kinesis stream at a steady rate (a load, the compose producer)

firehose <command> --help   the command's options
firehose --version          the version
`;

type OptionSpec = { type: 'string' | 'boolean'; short?: string; default?: string };

interface Command {
  readonly help: string;
  readonly options: Record<string, OptionSpec>;
}

const configOption: Record<string, OptionSpec> = { config: { type: 'string', short: 'c' } };

const commands: Record<string, Command> = {
  run: {
    help: `Usage: firehose run --config FILE [--worker-id NAME]

Runs every delivery stream of FILE in this process until SIGTERM or SIGINT, then seals the
buffers, delivers, writes final checkpoints, hands its shard leases over and exits 0 (1 if
something could not be delivered within runtime.shutdownTimeoutInSeconds: it is read again).
Run several against the same Redis and they share the shards. SIGHUP reloads FILE: delivery
streams added, removed or changed are started, stopped (as at shutdown) or restarted; an invalid
FILE is refused and the running configuration kept.
  -c, --config FILE    the configuration (YAML)
  --worker-id NAME     this worker's name in the fleet (default host:pid); a worker restarted
                       under the same name takes its leases back at once
`,
    options: { ...configOption, 'worker-id': { type: 'string' } },
  },
  validate: {
    help: `Usage: firehose validate --config FILE

Checks FILE and prints every problem with its path; exits 2 if there is any.
  -c, --config FILE   the configuration (YAML)
`,
    options: configOption,
  },
  dev: {
    help: `Usage: firehose dev [--shards N] [--rate RECORDS_PER_S] [--max-objects N]

Starts redis-server, kinesalite and s3rver on free ports, a demo stream and a sample producer,
runs the pipeline of config/dev.yaml and prints a line per object delivered. Ctrl-C stops it.
  --shards N              shards of the demo stream (default 4)
  --rate RECORDS_PER_S    the producer's rate (default 1000)
  --max-objects N         stop after N objects (default: run until Ctrl-C)
`,
    options: { shards: { type: 'string', default: '4' }, rate: { type: 'string', default: '1000' }, 'max-objects': { type: 'string', default: '0' } },
  },
  replay: {
    help: `Usage: firehose replay --config FILE --from s3://BUCKET/PREFIX --start ISO --end ISO --to STREAM|--to-kinesis STREAM [options]
       firehose replay --config FILE --kinesis-from ISO|SEQUENCE [--until ISO] --to STREAM [options]

Replays the archive's records whose arrival time is in [start, end) through the delivery stream
STREAM of FILE: its transforms, partitioning, conversion and destination. Objects are found through
their manifests, hour by hour. Running the same command again resumes it (progress is in Redis);
a finished replay says so. Ctrl-C stops it cleanly, with its progress saved.
  -c, --config FILE              the configuration (YAML)
  --from s3://BUCKET/PREFIX      the archive: the prefix its objects were written under
  --start ISO, --end ISO         the window of arrival times
  --kinesis-from ISO|SEQUENCE    instead of --from/--start/--end: re-read the --to stream's own Kinesis
                                 source from this time (or this record), beside its live readers,
                                 without touching their checkpoints
  --until ISO                    with --kinesis-from: up to records that arrived before this time
                                 (default: what the stream holds when the replay starts)
  --to STREAM                    the delivery stream the records go through
  --to-kinesis STREAM            or a Kinesis stream to put them into, with their partition keys
  --kinesis-endpoint URL         where that stream is, when not AWS (default: a source of FILE reading it)
  --id NAME                      the replay's name (default: from --from, --start, --end, --to)
  --dry-run                      count the objects, records and bytes; deliver nothing
  --framing newline|json-concat  for objects without manifests: how to split them
  --max-records-per-second N     at most N records a second
  --max-mb-per-second N          at most N MiB of records a second
  --manifests-prefix PREFIX      where the manifests are (default _manifests/)
`,
    options: {
      ...configOption,
      from: { type: 'string' },
      start: { type: 'string' },
      end: { type: 'string' },
      to: { type: 'string' },
      'to-kinesis': { type: 'string' },
      'kinesis-endpoint': { type: 'string' },
      'kinesis-from': { type: 'string' },
      until: { type: 'string' },
      id: { type: 'string' },
      'dry-run': { type: 'boolean' },
      framing: { type: 'string' },
      'max-records-per-second': { type: 'string' },
      'max-mb-per-second': { type: 'string' },
      'manifests-prefix': { type: 'string' },
    },
  },
  produce: {
    help: `Usage: firehose produce --stream NAME [--endpoint URL] [--region REGION] [--rate N] [--shards N]

Puts sample JSON log records into a Kinesis stream at a steady rate until SIGTERM or SIGINT
(the compose file's producer). Credentials come from the AWS SDK's default chain.
  --stream NAME      the Kinesis stream
  --endpoint URL     a Kinesis-compatible endpoint (kinesalite, LocalStack); default AWS
  --region REGION    default $AWS_REGION, else us-east-1
  --rate N           records per second (default 100)
  --shards N         create the stream with N shards when it does not exist
`,
    options: { stream: { type: 'string' }, endpoint: { type: 'string' }, region: { type: 'string' }, rate: { type: 'string', default: '100' }, shards: { type: 'string' } },
  },
  leases: {
    help: `Usage: firehose leases --config FILE [--json]

Per delivery stream and shard: the worker holding its lease, the lease's epoch (raised at each
change of owner), its checkpoint, when it expires, its parent shards and its state (open, ended).
  -c, --config FILE   the configuration (YAML)
  --json              one JSON array of {deliveryStream, shardId, owner, epoch, checkpoint,
                      expiresAt, parents, state}, for scripts
`,
    options: { ...configOption, json: { type: 'boolean' } },
  },
  dlq: {
    help: `Usage: firehose dlq list|show|redrive|purge --config FILE [--stream NAME] [--error CODE] [--since ISO-TIME] [--id ID]

  list      one line per parked record, and a count per delivery stream
  show      the whole entry (with --id, one)
  redrive   run the parked records back through their delivery stream; exit 0 when all were
            redriven, 1 when some failed again (they stay parked), 3 when another redrive runs
  purge     drop the matching entries
  -c, --config FILE   the configuration (YAML)
  --stream NAME       one delivery stream (default: every one)
  --error CODE        entries whose error code contains CODE
  --since ISO-TIME    entries whose last attempt was at or after it
  --id ID             one entry (shardId:sequenceNumber:subSequenceNumber)
`,
    options: { ...configOption, stream: { type: 'string' }, error: { type: 'string' }, since: { type: 'string' }, id: { type: 'string' } },
  },
};


/** The SDK's 8-line notice about Node 22 on every call, replaced by one line of ours where it matters. */
function quietNodeVersionNotice(command: string): void {
  if (!process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22 && (command === 'run' || command === 'dev')) {
    process.stderr.write(`firehose: Node ${process.versions.node}: supported; AWS SDK releases after early January 2027 need Node 22, so run production on it\n`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...afterCommand] = argv;
  // A log setting that does not exist is refused before anything runs, whatever the command.
  levelFromEnv('info');
  formatFromEnv();
  if (command === '--version' || command === '-v') {
    process.stdout.write(`firehose ${packageVersion()}\n`);
    return 0;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage);
    return 0;
  }
  if (!command) {
    process.stderr.write(usage);
    return 2;
  }
  const spec = commands[command];
  if (!spec) {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${usage}`);
    return 2;
  }
  // `firehose dlq <action> …`: the action is a word, not an option.
  const action = command === 'dlq' && afterCommand[0] && !afterCommand[0].startsWith('-') ? afterCommand[0] : undefined;
  const rest = action ? afterCommand.slice(1) : afterCommand;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: rest, options: { ...spec.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, '')} (firehose ${command} --help)`);
  }
  if (values.help) {
    process.stdout.write(spec.help);
    return 0;
  }
  quietNodeVersionNotice(command);
  switch (command) {
    case 'validate': {
      const config = await loadConfig(requireConfig(values.config as string | undefined));
      for (const note of config.notes ?? []) process.stdout.write(`note: ${note}\n`);
      process.stdout.write(`${values.config}: ok (${config.deliveryStreams.length} delivery stream(s))\n`);
      return 0;
    }
    case 'run': {
      const workerId = values['worker-id'] as string | undefined;
      if (workerId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(workerId)) throw new UsageError(`--worker-id must be 1–128 printable characters without spaces, got ${JSON.stringify(workerId)}`);
      return run(requireConfig(values.config as string | undefined), workerId);
    }
    case 'dlq': {
      if (!action) throw new UsageError('firehose dlq needs an action: list, show, redrive or purge (firehose dlq --help)');
      const sinceText = values.since as string | undefined;
      const since = sinceText === undefined ? undefined : Date.parse(sinceText);
      if (since !== undefined && Number.isNaN(since)) throw new UsageError(`--since must be an ISO-8601 time, got ${JSON.stringify(sinceText)}`);
      const { runDlqCommand } = await import('./dlq-cli.js');
      return runDlqCommand(action, await loadConfig(requireConfig(values.config as string | undefined)), {
        ...(values.stream ? { stream: values.stream as string } : {}),
        filter: {
          ...(values.error ? { errorCode: values.error as string } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(values.id ? { id: values.id as string } : {}),
        },
        out: (line) => process.stdout.write(line + '\n'),
        progress: { write: (text) => process.stderr.write(text), isTTY: process.stderr.isTTY === true },
      });
    }
    case 'replay': {
      if (values['kinesis-from'] === undefined) {
        for (const required of ['from', 'start', 'end'] as const) if (!values[required]) throw new UsageError(`--${required} is required (or --kinesis-from; firehose replay --help)`);
      }
      if (!values.to === !values['to-kinesis']) throw new UsageError('give one target: --to <delivery stream> or --to-kinesis <stream> (firehose replay --help)');
      const framing = values.framing as string | undefined;
      if (framing !== undefined && framing !== 'newline' && framing !== 'json-concat') throw new UsageError(`--framing must be newline or json-concat, got ${JSON.stringify(framing)}`);
      const config = await loadConfig(requireConfig(values.config as string | undefined));
      const { runReplayCommand } = await import('./replay/replay-cli.js');
      const { ReplayError } = await import('./replay/replay.js');
      try {
        return await runReplayCommand(
          config,
          {
            ...(values.from ? { from: values.from as string } : {}),
            ...(values.start ? { start: values.start as string } : {}),
            ...(values.end ? { end: values.end as string } : {}),
            ...(values['kinesis-from'] ? { kinesisFrom: values['kinesis-from'] as string } : {}),
            ...(values.until ? { kinesisUntil: values.until as string } : {}),
            ...(values.to ? { to: values.to as string } : {}),
            ...(values['to-kinesis'] ? { toKinesis: values['to-kinesis'] as string } : {}),
            ...(values['kinesis-endpoint'] ? { kinesis: { endpoint: values['kinesis-endpoint'] as string } } : {}),
            ...(values.id ? { id: values.id as string } : {}),
            ...(values['dry-run'] ? { dryRun: true } : {}),
            ...(framing ? { framing } : {}),
            ...(values['max-records-per-second'] ? { maxRecordsPerSecond: positive(values['max-records-per-second'] as string, '--max-records-per-second') } : {}),
            ...(values['max-mb-per-second'] ? { maxMBPerSecond: positiveNumber(values['max-mb-per-second'] as string, '--max-mb-per-second') } : {}),
            ...(values['manifests-prefix'] !== undefined ? { manifestsPrefix: values['manifests-prefix'] as string } : {}),
          },
          createLogger(levelFromEnv('warn')),
        );
      } catch (err) {
        if (err instanceof ReplayError) throw new UsageError(err.message);
        throw err;
      }
    }
    case 'produce': {
      if (!values.stream) throw new UsageError('--stream NAME is required');
      const { runProduce } = await import('./dev/produce-cli.js');
      return runProduce({
        stream: values.stream as string,
        endpoint: values.endpoint as string | undefined,
        region: (values.region as string | undefined) ?? process.env.AWS_REGION ?? 'us-east-1',
        recordsPerSecond: positive(values.rate as string, '--rate'),
        shards: values.shards === undefined ? undefined : positive(values.shards as string, '--shards'),
        out: (line) => process.stdout.write(line + '\n'),
      });
    }
    case 'leases': {
      const { runLeasesCommand } = await import('./leases-cli.js');
      return runLeasesCommand(await loadConfig(requireConfig(values.config as string | undefined)), {
        json: values.json === true,
        out: (line) => process.stdout.write(line + '\n'),
      });
    }
    case 'dev': {
      const { runDevMode } = await import('./dev/dev-mode.js');
      return runDevMode({
        shards: positive(values.shards as string, '--shards'),
        recordsPerSecond: positive(values.rate as string, '--rate'),
        maxObjects: Number(values['max-objects']),
        out: (line) => process.stdout.write(line + '\n'),
      });
    }
    default:
      return 2;
  }
}

async function run(configPath: string, workerId: string | undefined): Promise<number> {
  const config = await loadConfig(configPath);
  const log = createLogger();
  for (const note of config.notes ?? []) log.info('config note', { note });
  const service = await startService(config, { log, ...(workerId ? { workerId } : {}) });
  // SIGHUP reloads the file: an invalid one is refused and the running configuration kept.
  const reload = () => {
    void (async () => {
      log.info('SIGHUP: reloading the configuration', { config: configPath });
      let next;
      try {
        next = await loadConfig(configPath);
      } catch (err) {
        log.error('reload refused: the new configuration is invalid; the running one is kept', { problems: err instanceof ConfigError ? err.problems : [(err as Error).message] });
        return;
      }
      for (const note of next.notes ?? []) log.info('config note', { note });
      await service.reload(next).catch((err: unknown) => log.error('reload failed', { error: err }));
    })();
  };
  process.on('SIGHUP', reload);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  process.off('SIGHUP', reload);
  process.on('SIGHUP', () => log.warn('SIGHUP while stopping: ignored'));
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

function positiveNumber(value: string | undefined, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(value)}`);
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
  if (err instanceof UsageError || err instanceof MissingPeerError || err instanceof LogSettingError || ((err as Error)?.name === 'TypeError' && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`firehose: ${(err as Error).message}\n`);
    return exit(2);
  }
  process.stderr.write(`firehose: ${(err as Error)?.stack ?? String(err)}\n`);
  exit(1);
});
