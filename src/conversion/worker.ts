/**
 * A conversion thread: JSON records in, Parquet out. Each open file is a session; chunks of raw
 * records arrive as they fill, are parsed and coerced at once (the raw bytes are then dropped),
 * and every `rowGroupBytes` of input becomes a row group, whose encoded bytes go back to the main
 * thread. Memory holds at most one row group's values per session.
 */
import { gzipSync } from 'node:zlib';
import { parentPort } from 'node:worker_threads';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { CoercionError, parseJsonExact, parquetSchema, rowOf, type SessionSpec } from './types.js';

export type { SessionSpec };

export type ToWorker =
  | { type: 'open'; session: number; spec: SessionSpec }
  | { type: 'chunk'; session: number; chunk: number; payload: Uint8Array; ends: Uint32Array }
  | { type: 'finish'; session: number }
  | { type: 'abandon'; session: number };

export type FromWorker =
  | { type: 'chunk-done'; session: number; chunk: number; failures: Array<{ index: number; message: string }> }
  | { type: 'finished'; session: number; parts: Uint8Array[]; rows: number }
  | { type: 'failed'; session: number; message: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

class Session {
  private readonly writer = new ByteWriter(1 << 20);
  private readonly parquet: ParquetWriter;
  private columns: unknown[][];
  private pendingBytes = 0;
  private rows = 0;
  private readonly parts: Uint8Array[] = [];

  constructor(private readonly spec: SessionSpec) {
    this.parquet = new ParquetWriter({
      writer: this.writer,
      schema: parquetSchema(spec.columns) as never,
      codec: spec.compression,
      compressors: { GZIP: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)) },
      createdBy: 'firehose (hyparquet-writer)',
    });
    this.columns = spec.columns.map(() => []);
  }

  add(payload: Uint8Array, ends: Uint32Array): Array<{ index: number; message: string }> {
    const failures: Array<{ index: number; message: string }> = [];
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i]!;
      try {
        const row = rowOf(parseJsonExact(decoder.decode(payload.subarray(start, end))), this.spec.columns, this.spec.deserializer);
        for (let c = 0; c < row.length; c++) this.columns[c]!.push(row[c]);
        this.pendingBytes += end - start;
      } catch (err) {
        const message = err instanceof CoercionError ? err.message : err instanceof SyntaxError ? `the record is not JSON: ${err.message}` : `the record is not UTF-8 JSON: ${(err as Error).message}`;
        failures.push({ index: i, message });
      }
      start = end;
    }
    if (this.pendingBytes >= this.spec.rowGroupBytes) this.writeRowGroup();
    return failures;
  }

  finish(): { parts: Uint8Array[]; rows: number } {
    this.writeRowGroup();
    if (this.rows === 0) return { parts: [], rows: 0 };
    this.parquet.finish();
    this.takeBytes();
    return { parts: this.parts, rows: this.rows };
  }

  private writeRowGroup(): void {
    const count = this.columns[0]?.length ?? 0;
    if (count === 0) return;
    this.parquet.write({
      columnData: this.spec.columns.map((c, i) => ({ name: c.name, data: this.columns[i] as never })),
      rowGroupSize: count,
      pageSize: this.spec.pageSizeBytes,
      ...(this.spec.enableDictionaryCompression ? {} : { dictionarySize: 0 }),
    });
    this.rows += count;
    this.columns = this.spec.columns.map(() => []);
    this.pendingBytes = 0;
    this.takeBytes();
  }

  /** Moves the bytes written so far out of the writer (its file offsets keep counting). */
  private takeBytes(): void {
    if (this.writer.index === 0) return;
    this.parts.push(new Uint8Array(this.writer.buffer.slice(0, this.writer.index)));
    this.writer.index = 0;
  }
}

const sessions = new Map<number, Session>();

function reply(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(message, transfer);
}

parentPort!.on('message', (message: ToWorker) => {
  try {
    switch (message.type) {
      case 'open':
        sessions.set(message.session, new Session(message.spec));
        break;
      case 'chunk': {
        const failures = sessions.get(message.session)!.add(message.payload, message.ends);
        reply({ type: 'chunk-done', session: message.session, chunk: message.chunk, failures });
        break;
      }
      case 'finish': {
        const { parts, rows } = sessions.get(message.session)!.finish();
        sessions.delete(message.session);
        reply({ type: 'finished', session: message.session, parts, rows }, parts.map((p) => p.buffer as ArrayBuffer));
        break;
      }
      case 'abandon':
        sessions.delete(message.session);
        break;
    }
  } catch (err) {
    sessions.delete(message.session);
    reply({ type: 'failed', session: message.session, message: (err as Error).message });
  }
});
