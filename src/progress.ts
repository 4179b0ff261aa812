/** What a long operation has done so far. */
export interface ProgressFigures {
  readonly done: number;
  readonly total: number;
  readonly bytes: number;
  readonly unit: string;
}

const WIDTH = 30;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A progress bar with counts, rate and ETA on a terminal, redrawn in place; plain lines at a
 * slower pace when the output is not a TTY (a log file, a pipe, CI).
 */
export class ProgressReporter {
  private readonly started = Date.now();
  private last = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly isTTY: boolean,
    private readonly label: string,
  ) {}

  update(figures: ProgressFigures, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < (this.isTTY ? 200 : 5_000)) return;
    this.last = now;
    const elapsed = Math.max(0.001, (now - this.started) / 1000);
    const rate = figures.done / elapsed;
    const eta = rate > 0 ? (figures.total - figures.done) / rate : Infinity;
    const share = figures.total > 0 ? Math.min(1, figures.done / figures.total) : 1;
    const counts = `${figures.done.toLocaleString('en-US')}/${figures.total.toLocaleString('en-US')} ${figures.unit}  ${(figures.bytes / 1048576).toFixed(1)} MiB  ${Math.round(rate).toLocaleString('en-US')}/s  ETA ${duration(eta)}`;
    if (this.isTTY) {
      const filled = Math.round(share * WIDTH);
      this.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${Math.floor(share * 100)}%  ${counts}\x1b[K`);
    } else {
      this.write(`${this.label}: ${counts}\n`);
    }
  }

  /** The last figures, and a line end on a terminal. */
  finish(figures: ProgressFigures): void {
    this.update(figures, true);
    if (this.isTTY) this.write('\n');
  }
}
