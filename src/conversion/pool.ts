import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { EncodedRowGroup } from './row-group.js';
import type { FromWorker, SessionSpec, ToWorker } from './worker.js';

// Tests run the TypeScript sources; the worker thread runs the build (which `npm test` makes first).
const workerScript = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/conversion/worker.js', import.meta.url)
  : new URL('./worker.js', import.meta.url);

interface Job {
  readonly id: number;
  readonly spec: number;
  readonly payload: Uint8Array;
  readonly ends: Uint32Array;
  resolve(group: EncodedRowGroup): void;
  reject(err: Error): void;
}

/**
 * Conversion threads, each encoding one row group at a time, taken in order from one queue: a
 * file's row groups are converted on every thread at once, and no thread idles while another has
 * a backlog.
 */
export class ConversionPool {
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, Job>();
  private readonly queue: Job[] = [];
  private readonly specs = new Map<SessionSpec, number>();
  private nextJob = 1;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    for (let i = 0; i < this.size; i++) this.spawn();
  }

  /** Encodes these records (`ends[i]` is where record i ends) as one row group; the bytes are moved to the thread, not copied. */
  encode(spec: SessionSpec, payload: Uint8Array, ends: Uint32Array): Promise<EncodedRowGroup> {
    if (this.closed) return Promise.reject(new Error('the conversion pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextJob++, spec: this.specId(spec), payload, ends, resolve, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the conversion pool is closed'));
    await Promise.all([...this.idle, ...this.running.keys()].map((w) => w.terminate()));
  }

  private specId(spec: SessionSpec): number {
    let id = this.specs.get(spec);
    if (id === undefined) {
      id = this.specs.size + 1;
      this.specs.set(spec, id);
      for (const worker of [...this.idle, ...this.running.keys()]) this.post(worker, { type: 'spec', spec: id, value: spec });
    }
    return id;
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      this.post(worker, { type: 'row-group', job: job.id, spec: job.spec, payload: job.payload, ends: job.ends }, [job.payload.buffer as ArrayBuffer, job.ends.buffer as ArrayBuffer]);
    }
  }

  private post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private spawn(): void {
    const worker = new Worker(workerScript);
    for (const [spec, id] of this.specs) this.post(worker, { type: 'spec', spec: id, value: spec });
    this.idle.push(worker);
    worker.on('message', (message: FromWorker) => {
      const job = this.running.get(worker);
      if (!job || job.id !== message.job) return;
      this.running.delete(worker);
      this.idle.push(worker);
      if (message.type === 'row-group') job.resolve(message.group);
      else job.reject(new Error(message.message));
      this.dispatch();
    });
    worker.on('error', (err) => this.log.error('conversion thread failed', { error: err }));
    worker.on('exit', (code) => {
      const idleAt = this.idle.indexOf(worker);
      if (idleAt >= 0) this.idle.splice(idleAt, 1);
      const job = this.running.get(worker);
      this.running.delete(worker);
      job?.reject(new Error(`the conversion thread exited (code ${code})`));
      if (!this.closed) {
        this.spawn();
        this.dispatch();
      }
    });
  }
}
