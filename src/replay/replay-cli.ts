import type { ServiceConfig } from '../config.js';
import type { Logger } from '../log.js';
import { replay, type ReplayOptions, type ReplayReport } from './replay.js';

const MiB = 1024 * 1024;
const n = (x: number) => x.toLocaleString('en-US');

/** `firehose replay`: the library's replay, with a progress bar on a terminal and plain lines otherwise; SIGINT stops it cleanly. */
export async function runReplayCommand(config: ServiceConfig, options: Omit<ReplayOptions, 'signal' | 'onProgress' | 'log'>, log: Logger, out: NodeJS.WriteStream = process.stderr): Promise<number> {
  const stopping = new AbortController();
  const interrupt = () => {
    if (!stopping.signal.aborted) out.write('\nstopping: delivering what is under way and saving the progress…\n');
    stopping.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  const terminal = out.isTTY === true;
  let lastLine = 0;
  const onProgress = (p: ReplayReport) => {
    if (options.dryRun) return;
    if (terminal) out.write(`\r${bar(p)}\x1b[K`);
    else if (Date.now() - lastLine >= 5_000) {
      lastLine = Date.now();
      out.write(`${line(p)}\n`);
    }
  };
  try {
    const result = await replay(config, { ...options, signal: stopping.signal, onProgress, log });
    if (terminal && !options.dryRun) out.write('\n');
    const where = options.kinesisFrom
      ? `${options.to}'s Kinesis stream from ${options.kinesisFrom}${options.kinesisUntil ? ` until ${options.kinesisUntil}` : ''} → ${options.to}`
      : `${options.from} ${String(options.start)}–${String(options.end)} → ${options.to ?? `kinesis stream ${options.toKinesis}`}`;
    switch (result.state) {
      case 'dry-run':
        process.stdout.write(
          `dry run: ${n(result.totalObjects)} object(s)` +
            (result.totalRecords === undefined ? ' (no manifests: records are counted once split)' : `, ${n(result.totalRecords)} record(s), ${(result.totalBytes! / MiB).toFixed(2)} MiB`) +
            ` would be replayed (${where}); nothing was delivered\n`,
        );
        return 0;
      case 'already-finished':
        process.stdout.write(`replay ${result.id} already finished (${n(result.recordsBefore)} records); give --id NAME to run it again\n`);
        return 0;
      case 'stopped':
        process.stdout.write(`replay ${result.id} stopped: ${n(result.recordsBefore + result.records)} record(s) handed on so far; run the same command again to resume\n`);
        return 130;
      case 'finished':
        process.stdout.write(`replay ${result.id} finished: ${n(result.records)} record(s), ${(result.bytes / MiB).toFixed(2)} MiB in ${((Date.now() - result.startedAt) / 1000).toFixed(1)} s (${n(result.recordsBefore)} by earlier runs, ${n(result.objectsSkipped)} object(s) skipped as done) (${where})\n`);
        return 0;
    }
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

function rate(p: ReplayReport): number {
  const seconds = (Date.now() - p.startedAt) / 1000;
  return seconds > 0 ? p.records / seconds : 0;
}

function eta(p: ReplayReport): string {
  if (p.totalRecords === undefined) return '';
  const left = p.totalRecords - p.recordsBefore - p.records;
  const r = rate(p);
  return r > 0 && left > 0 ? ` · ETA ${Math.ceil(left / r)} s` : '';
}

function bar(p: ReplayReport): string {
  const done = p.recordsBefore + p.records;
  const share = p.totalRecords ? Math.min(1, done / p.totalRecords) : undefined;
  const width = 30;
  const filled = share === undefined ? 0 : Math.round(share * width);
  const gauge = share === undefined ? '' : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(share * 100)}% `;
  return `${gauge}${n(done)}${p.totalRecords === undefined ? '' : `/${n(p.totalRecords)}`} records · ${(p.bytes / MiB).toFixed(1)} MiB · ${n(Math.round(rate(p)))} rec/s${eta(p)}`;
}

function line(p: ReplayReport): string {
  return `replay ${p.id}: ${n(p.recordsBefore + p.records)}${p.totalRecords === undefined ? '' : ` of ${n(p.totalRecords)}`} records, ${(p.bytes / MiB).toFixed(1)} MiB, ${n(Math.round(rate(p)))} records/s${eta(p)}, ${n(p.objectsDone)} of ${n(p.totalObjects)} objects done`;
}
