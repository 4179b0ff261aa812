import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { resolveModule } from '../src/transform/config.js';
import { TransformPool, RESULT_DROPPED, RESULT_FAILED, RESULT_OK, type InvocationOutcome } from '../src/transform/pool.js';
import { buildInvocation } from '../src/transform/stage.js';

const identity = { deliveryStreamArn: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/t', region: 'us-east-1', source: { event: { sourceKinesisStreamArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s' }, recordMetadataKey: 'kinesisRecordMetadata' } };

/** Runs a built-in transform in a real worker thread with the given environment, as the service does. */
async function run(name: string, env: Record<string, string>, inputs: Array<string | Buffer>) {
  const pool = new TransformPool(resolveModule(name), 1, env, silentLogger);
  await pool.start();
  try {
    const records = inputs.map((data, i) => ({
      data: Buffer.isBuffer(data) ? data : Buffer.from(data),
      approximateArrivalTimestamp: Date.UTC(2026, 10, 23, 5, 0, i),
      shardId: 'shardId-000000000000',
      partitionKey: `pk${i}`,
      sequenceNumber: String(1000 + i),
      subSequenceNumber: 0,
    }));
    const outcome = await pool.invoke(buildInvocation(records, identity), 10_000);
    if (!outcome.ok) throw new Error(`${outcome.errorCode}: ${outcome.errorMessage}`);
    return outcome;
  } finally {
    await pool.close();
  }
}

const text = (o: Extract<InvocationOutcome, { ok: true }>, i: number) => Buffer.from(o.data[i]!).toString('utf8');

describe('built-in transforms', () => {
  it('redact-fields masks nested fields, keeps the rest and the trailing newline, fails non-JSON', async () => {
    const out = await run('redact-fields', { REDACT_FIELDS: 'password,card.number,absent.field', REDACT_MASK: '[redacted]' }, [
      JSON.stringify({ user: 'ann', password: 'hunter2', card: { number: '4111', exp: '12/30' } }) + '\n',
      'not json',
      '[1,2]',
    ]);
    expect([...out.results]).toEqual([RESULT_OK, RESULT_FAILED, RESULT_FAILED]);
    expect(text(out, 0)).toBe(JSON.stringify({ user: 'ann', password: '[redacted]', card: { number: '[redacted]', exp: '12/30' } }) + '\n');
  });

  it('filter drops matching records (or keeps only them) and passes non-JSON on', async () => {
    const inputs = ['{"level":"DEBUG"}', '{"level":"INFO"}', '{"http":{"status":500}}', 'plain text'];
    const dropped = await run('filter', { FILTER_FIELD: 'level', FILTER_VALUES: 'DEBUG,TRACE' }, inputs);
    expect([...dropped.results]).toEqual([RESULT_DROPPED, RESULT_OK, RESULT_OK, RESULT_OK]);
    expect(text(dropped, 3)).toBe('plain text');
    const kept = await run('filter', { FILTER_FIELD: 'http.status', FILTER_VALUES: '500', FILTER_ACTION: 'keep' }, inputs);
    expect([...kept.results]).toEqual([RESULT_DROPPED, RESULT_DROPPED, RESULT_OK, RESULT_OK]);
  });

  it('add-fields merges static fields, timestamps and Kinesis metadata', async () => {
    const out = await run(
      'add-fields',
      { ADD_FIELDS: '{"env":"prod"}', ADD_INGEST_TIMESTAMP: 'ingested_at', ADD_ARRIVAL_TIMESTAMP: 'arrived_at', ADD_KINESIS_METADATA: 'kinesis' },
      ['{"a":1}', 'nope'],
    );
    expect([...out.results]).toEqual([RESULT_OK, RESULT_FAILED]);
    const doc = JSON.parse(text(out, 0));
    expect(doc).toMatchObject({ a: 1, env: 'prod', arrived_at: '2026-11-23T05:00:00.000Z', kinesis: { shardId: 'shardId-000000000000', partitionKey: 'pk0', sequenceNumber: '1000' } });
    expect(Date.now() - Date.parse(doc.ingested_at)).toBeLessThan(60_000);
  });

  it('cloudwatch-logs-unpack turns a subscription payload into its log lines and drops control messages', async () => {
    const data = gzipSync(JSON.stringify({
      messageType: 'DATA_MESSAGE', owner: '123', logGroup: '/app/web', logStream: 'i-1', subscriptionFilters: ['f'],
      logEvents: [{ id: '1', timestamp: 1, message: 'GET /a 200' }, { id: '2', timestamp: 2, message: 'GET /b 404' }],
    }));
    const control = gzipSync(JSON.stringify({ messageType: 'CONTROL_MESSAGE', logEvents: [{ id: '', timestamp: 0, message: 'CWL CONTROL MESSAGE' }] }));
    const out = await run('cloudwatch-logs-unpack', {}, [data, control, Buffer.from('not gzip')]);
    expect([...out.results]).toEqual([RESULT_OK, RESULT_DROPPED, RESULT_FAILED]);
    expect(text(out, 0)).toBe('GET /a 200\nGET /b 404\n');
    const json = await run('cloudwatch-logs-unpack', { CWL_OUTPUT: 'json' }, [data]);
    expect(text(json, 0).trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { logGroup: '/app/web', logStream: 'i-1', id: '1', timestamp: 1, message: 'GET /a 200' },
      { logGroup: '/app/web', logStream: 'i-1', id: '2', timestamp: 2, message: 'GET /b 404' },
    ]);
  });
});
