import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { FromWorker, SessionSpec, ToWorker } from './worker.js';

// Tests run the TypeScript sources; the worker thread runs the build (which `npm test` makes first).
const workerScript = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/conversion/worker.js', import.meta.url)
  : new URL('./worker.js', import.meta.url);

export interface SessionEvents {
  chunkDone(chunk: number, failures: Array<{ index: number; message: string }>): void;
  finished(parts: Uint8Array[], rows: number): void;
  failed(message: string): void;
}

/** Conversion threads; each open Parquet file (a session) lives on one of them. */
export class ConversionPool {
  private readonly workers: Worker[] = [];
  private readonly sessions = new Map<number, { worker: Worker; events: SessionEvents }>();
  private nextSession = 1;
  private nextWorker = 0;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    for (let i = 0; i < this.size; i++) this.spawn();
  }

  open(spec: SessionSpec, events: SessionEvents): number {
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    const session = this.nextSession++;
    this.sessions.set(session, { worker, events });
    this.post(worker, { type: 'open', session, spec });
    return session;
  }

  /** The chunk's bytes are moved to the thread, not copied. */
  chunk(session: number, chunk: number, payload: Uint8Array, ends: Uint32Array): void {
    const s = this.sessions.get(session);
    if (!s) return;
    this.post(s.worker, { type: 'chunk', session, chunk, payload, ends }, [payload.buffer as ArrayBuffer, ends.buffer as ArrayBuffer]);
  }

  finish(session: number): void {
    const s = this.sessions.get(session);
    if (s) this.post(s.worker, { type: 'finish', session });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
    worker.postMessage(message, transfer);
  }

  private spawn(): void {
    const worker = new Worker(workerScript);
    this.workers.push(worker);
    worker.on('message', (message: FromWorker) => {
      const s = this.sessions.get(message.session);
      if (!s) return;
      if (message.type === 'chunk-done') s.events.chunkDone(message.chunk, message.failures);
      else {
        this.sessions.delete(message.session);
        if (message.type === 'finished') s.events.finished(message.parts, message.rows);
        else s.events.failed(message.message);
      }
    });
    worker.on('error', (err) => this.log.error('conversion thread failed', { error: err }));
    worker.on('exit', (code) => {
      this.workers.splice(this.workers.indexOf(worker), 1);
      for (const [id, s] of this.sessions) {
        if (s.worker !== worker) continue;
        this.sessions.delete(id);
        s.events.failed(`the conversion thread exited (code ${code})`);
      }
      if (!this.closed) this.spawn();
    });
  }
}
