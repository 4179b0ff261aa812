import { randomUUID } from 'node:crypto';
import type { ServiceConfig } from './config.js';
import type { EncodedBatch } from './destination.js';
import { DeadLetterQueue, dlqConnection, type DeadLetterEntry } from './dlq.js';
import { BytesEncoder } from './encoder.js';
import { silentLogger } from './log.js';
import type { SourceRecord } from './records.js';

export interface DlqOptions {
  readonly stream?: string;
  readonly errorCode?: string;
  readonly since?: number;
  readonly id?: string;
  readonly out: (line: string) => void;
}

/** `firehose dlq list|show|redrive|purge`: inspect and act on parked records. Returns the exit code. */
export async function runDlqCommand(action: string, config: ServiceConfig, options: DlqOptions): Promise<number> {
  const streams = config.deliveryStreams.filter((s) => !options.stream || s.deliveryStreamName === options.stream);
  if (streams.length === 0) {
    options.out(`no delivery stream named ${JSON.stringify(options.stream)} in the configuration`);
    return 2;
  }
  const redis = dlqConnection(config.redis.url);
  let code = 0;
  try {
    for (const stream of streams) {
      const name = stream.deliveryStreamName;
      const dlq = new DeadLetterQueue(redis, name, config.runtime.deadLetterQueue.maxSizeInMBs * 1024 * 1024);
      try {
        let entries = await dlq.list({ ...(options.errorCode ? { errorCode: options.errorCode } : {}), ...(options.since !== undefined ? { since: options.since } : {}) });
        if (options.id) entries = entries.filter((e) => e.id === options.id);
        switch (action) {
          case 'list':
            for (const e of entries) {
              const l = e.letter;
              options.out(
                `${e.id}  ${name}  ${l.destination}  ${l.errorCode}  attempts=${l.attemptsMade}  last=${new Date(l.lastAttemptAt).toISOString()}  bytes=${Buffer.from(l.data, 'base64').length}  ${l.errorMessage.slice(0, 120)}`,
              );
            }
            options.out(`${name}: ${entries.length} dead letter(s)`);
            break;
          case 'show':
            for (const e of entries) {
              const data = Buffer.from(e.letter.data, 'base64');
              options.out(JSON.stringify({ id: e.id, addedAt: new Date(e.addedAt).toISOString(), ...e.letter, dataPreview: data.toString('utf8').slice(0, 2000) }, null, 2));
            }
            if (entries.length === 0) {
              options.out(`${name}: no matching dead letter`);
              code = code || 1;
            }
            break;
          case 'purge':
            await dlq.remove(entries);
            options.out(`${name}: purged ${entries.length} dead letter(s)`);
            break;
          case 'redrive': {
            const delivered = await redrive(stream, entries, dlq, options.out);
            options.out(`${name}: redrove ${delivered} of ${entries.length} dead letter(s)`);
            if (delivered < entries.length) code = 1;
            break;
          }
          default:
            options.out(`unknown dlq action ${JSON.stringify(action)} (list, show, redrive, purge)`);
            return 2;
        }
      } finally {
        await dlq.close();
      }
    }
  } finally {
    redis.disconnect();
  }
  return code;
}

/** Delivers parked records through their original destination, in batches; removes each batch once delivered. */
export async function redrive(stream: ServiceConfig['deliveryStreams'][number], entries: DeadLetterEntry[], dlq: DeadLetterQueue, out: (line: string) => void): Promise<number> {
  const { plugin, config } = stream.destination;
  const region = stream.kinesisStreamSource.region;
  const context = {
    deliveryStreamName: stream.deliveryStreamName,
    deliveryStreamArn: `arn:aws:firehose:${region}:000000000000:deliverystream/${stream.deliveryStreamName}`,
    log: silentLogger,
  };
  const pipeline = plugin.pipeline(config);
  const destination = plugin.create(config, context);
  const batchRecords = Math.min(pipeline.buffer.maxRecords ?? 500, 500);
  let delivered = 0;
  try {
    for (let i = 0; i < entries.length; i += batchRecords) {
      const part = entries.slice(i, i + batchRecords);
      const data = part.map((e) => Buffer.from(e.letter.data, 'base64'));
      let chunks: Buffer[] = [];
      if (!pipeline.recordOriented) {
        const encoder = new BytesEncoder(pipeline.buffer.compression, 4 * 1024 * 1024, pipeline.buffer.appendNewlineDelimiter);
        for (const d of data) encoder.append({ data: d } as SourceRecord);
        chunks = await encoder.finish();
      }
      const batch: EncodedBatch = {
        id: randomUUID(),
        deliveryStreamName: stream.deliveryStreamName,
        records: part.length,
        rawBytes: data.reduce((n, d) => n + d.length, 0),
        compression: pipeline.buffer.compression,
        chunks,
        encodedBytes: chunks.reduce((n, c) => n + c.length, 0),
        oldestArrivalTimestamp: Math.min(...part.map((e) => e.letter.arrivalTimestamp)),
        ...(pipeline.recordOriented ? { recordData: data } : {}),
      };
      try {
        const receipt = await destination.deliver(batch, new AbortController().signal);
        await dlq.remove(part);
        delivered += part.length;
        out(`  delivered ${part.length} to ${receipt.location}`);
      } catch (err) {
        out(`  ${part.length} still failing, kept in the queue: ${(err as Error).message}`);
      }
    }
  } finally {
    await destination.close();
  }
  return delivered;
}
