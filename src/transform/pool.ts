import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';

export interface InvocationRecord {
  readonly recordId: string;
  readonly approximateArrivalTimestamp: number;
  readonly data: Uint8Array;
  /** The record's shard, partition key and sequence numbers, under the source's metadata key. */
  readonly metadata: {
    readonly shardId: string;
    readonly partitionKey: string;
    readonly approximateArrivalTimestamp: number;
    readonly sequenceNumber: string;
    readonly subsequenceNumber: string;
  };
}

export interface Invocation {
  readonly invocationId: string;
  readonly deliveryStreamArn: string;
  readonly region: string;
  /** Top-level event fields naming the source (`sourceKinesisStreamArn`). */
  readonly sourceFields: Readonly<Record<string, string>>;
  /** Where each event record carries `metadata` (`kinesisRecordMetadata`); absent: not carried. */
  readonly recordMetadataKey?: string;
  readonly records: readonly InvocationRecord[];
}

export const RESULT_OK = 0;
export const RESULT_DROPPED = 1;
export const RESULT_FAILED = 2;

export type InvocationOutcome =
  | {
      ok: true;
      /** Per input record: RESULT_OK, RESULT_DROPPED or RESULT_FAILED. */
      results: Uint8Array;
      data: (Uint8Array | null)[];
      partitionKeys: (Record<string, string> | null)[];
    }
  | { ok: false; errorCode: string; errorMessage: string };

interface Task {
  readonly id: number;
  readonly invocation: Invocation;
  readonly timeoutMs: number;
  resolve(outcome: InvocationOutcome): void;
}

interface Slot {
  worker: Worker;
  /** Loaded its module at least once: replace it if it dies. */
  started: boolean;
  /** Free for a task (started, and not being terminated). */
  ready: boolean;
  task: Task | undefined;
  timer: NodeJS.Timeout | undefined;
}

const workerScript = new URL('./worker.js', import.meta.url);

/**
 * Worker threads running one transform module. An invocation that outlives its timeout gets its
 * thread terminated; a thread that dies is replaced; either way the invocation reports a failure
 * the stage can retry. Nothing a handler does reaches the main event loop.
 */
export class TransformPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    readonly modulePath: string,
    private readonly size: number,
    private readonly environment: Readonly<Record<string, string>>,
    private readonly log: Logger,
  ) {}

  /** Starts the threads; rejects with the module's load error (a missing file, no handler export…). */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
  }

  invoke(invocation: Invocation, timeoutMs: number): Promise<InvocationOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, errorCode: 'Lambda.ServiceUnavailable', errorMessage: 'the pool is closed' });
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, invocation, timeoutMs, resolve });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.resolve({ ok: false, errorCode: 'Lambda.ServiceUnavailable', errorMessage: 'shutting down' });
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private spawn(): Promise<void> {
    const worker = new Worker(workerScript, {
      workerData: { module: this.modulePath, functionName: this.modulePath },
      env: { ...process.env, ...this.environment },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, started: false, ready: false, task: undefined, timer: undefined };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      worker.on('message', (message: { type: string; id?: number; message?: string } & Record<string, unknown>) => {
        const task = slot.task;
        if (message.type === 'ready') {
          slot.started = true;
          slot.ready = true;
          resolve();
          this.pump();
        } else if (message.type === 'load-error') {
          reject(new Error(message.message));
          void worker.terminate();
        } else if (message.type === 'result' && task && task.id === message.id) {
          this.finish(slot);
          const { type: _type, id: _id, ...outcome } = message;
          task.resolve(outcome as unknown as InvocationOutcome);
        }
      });
      worker.on('error', (err) => {
        // An error thrown outside the handler's promise: the thread is gone.
        this.log.warn('transform thread failed', { module: this.modulePath, error: err });
        reject(err);
      });
      worker.on('exit', (code) => {
        const task = slot.task;
        this.finish(slot);
        this.slots.splice(this.slots.indexOf(slot), 1);
        if (task) {
          task.resolve({ ok: false, errorCode: 'Lambda.FunctionError', errorMessage: `the handler's thread exited (code ${code}) during the invocation` });
        }
        if (!this.closed && slot.started) {
          this.spawn().catch((err: unknown) => this.log.error('cannot restart a transform thread', { module: this.modulePath, error: err }));
        }
      });
    });
  }

  private finish(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.task = undefined;
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.task) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.timer = setTimeout(() => {
        if (slot.task !== task) return;
        slot.task = undefined;
        slot.ready = false; // no new task for a thread being terminated
        task.resolve({ ok: false, errorCode: 'Lambda.FunctionTimedOut', errorMessage: `the handler did not answer within ${task.timeoutMs} ms` });
        void slot.worker.terminate(); // the exit handler starts a replacement
      }, task.timeoutMs);
      // All records' bytes share one ArrayBuffer (see TransformStage): transfer it, do not copy it.
      const payload = task.invocation.records[0]?.data.buffer;
      slot.worker.postMessage({ id: task.id, timeoutMs: task.timeoutMs, ...task.invocation }, payload ? [payload as ArrayBuffer] : []);
    }
  }
}
