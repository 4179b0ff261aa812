/**
 * A conversion thread: JSON records in, one Parquet row group out per job. It keeps nothing between
 * jobs but the specs it was given, so the pool hands each row group to whichever thread is free.
 */
import { parentPort } from 'node:worker_threads';
import { encodeRowGroup, type EncodedRowGroup } from './row-group.js';
import type { SessionSpec } from './types.js';

export type { SessionSpec };

export type ToWorker =
  | { type: 'spec'; spec: number; value: SessionSpec }
  | { type: 'row-group'; job: number; spec: number; payload: Uint8Array; ends: Uint32Array };

export type FromWorker = { type: 'row-group'; job: number; group: EncodedRowGroup } | { type: 'failed'; job: number; message: string };

const specs = new Map<number, SessionSpec>();

function reply(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(message, transfer);
}

parentPort!.on('message', (message: ToWorker) => {
  if (message.type === 'spec') {
    specs.set(message.spec, message.value);
    return;
  }
  try {
    const group = encodeRowGroup(specs.get(message.spec)!, message.payload, message.ends);
    reply({ type: 'row-group', job: message.job, group }, [group.bytes.buffer as ArrayBuffer]);
  } catch (err) {
    reply({ type: 'failed', job: message.job, message: (err as Error).message });
  }
});
