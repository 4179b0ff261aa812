import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createLogger, formatFromEnv, levelFromEnv, LogSettingError } from '../src/log.js';
import { addSecrets } from '../src/secrets.js';
import { CLI } from './helpers/cli.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed log line, read field by field
type Entry = Record<string, any>;

function capture(format: 'json' | 'pretty', level: 'debug' | 'info' = 'info') {
  const lines: string[] = [];
  return { log: createLogger(level, { deliveryStream: 'clicks' }, undefined, { format, write: (l) => lines.push(l) }), lines };
}

/** An error as the AWS SDK throws one: its name is the service's error code, with $metadata. */
function awsError(): Error {
  const err = new Error('Rate exceeded for shard shardId-000000000001');
  err.name = 'ProvisionedThroughputExceededException';
  Object.assign(err, { $metadata: { httpStatusCode: 400, requestId: 'f00-ba4' }, $fault: 'client' });
  return err;
}

describe('logs', () => {
  it('serialize errors with their stack, AWS code, status, request id and cause chain', () => {
    const { log, lines } = capture('json');
    const connect = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4567'), { code: 'ECONNREFUSED' });
    log.warn('GetRecords failed; backing off', { shardId: 'shardId-000000000001', error: new Error('reading failed', { cause: Object.assign(awsError(), { cause: connect }) }) });
    const entry = JSON.parse(lines[0]!) as Entry;
    expect(entry).toMatchObject({ level: 'warn', msg: 'GetRecords failed; backing off', deliveryStream: 'clicks', shardId: 'shardId-000000000001' });
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(entry.error.type).toBe('Error');
    expect(entry.error.stack).toContain('log.test.ts');
    expect(entry.error.cause).toMatchObject({ type: 'ProvisionedThroughputExceededException', code: 'ProvisionedThroughputExceededException', httpStatusCode: 400, requestId: 'f00-ba4' });
    expect(entry.error.cause.cause).toMatchObject({ type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:4567' });
  });

  it('redact secret-named fields, configured secret values and credentials inside URLs, wherever they appear', () => {
    addSecrets(['per-config-secret-value']);
    const { log, lines } = capture('json');
    log.error('delivery failed', {
      accessKey: 'anything at all',
      password: 'x',
      endpoint: 'https://user:pa55word@example.com/ingest?api_key=abc123&region=eu',
      error: new Error('the endpoint answered 401: key per-config-secret-value refused'),
    });
    const line = lines[0]!;
    expect(line).not.toMatch(/anything at all|pa55word|abc123|per-config-secret-value/);
    const entry = JSON.parse(line) as Entry;
    expect(entry.accessKey).toBe('[redacted]');
    expect(entry.password).toBe('[redacted]');
    expect(entry.endpoint).toBe('https://user:[redacted]@example.com/ingest?api_key=[redacted]&region=eu');
    expect(entry.error.message).toBe('the endpoint answered 401: key [redacted] refused');
  });

  it('read as lines by a person in pretty mode: time, level, message, fields, then the stack and causes', () => {
    const { log, lines } = capture('pretty');
    log.info('delivered', { location: 's3://bucket/key.gz', records: 1200 });
    log.warn('GetRecords failed', { error: new Error('outer', { cause: awsError() }) });
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}delivered {2}deliveryStream=clicks location=s3:\/\/bucket\/key\.gz records=1200$/);
    const [head, ...stack] = lines[1]!.split('\n');
    expect(head).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}GetRecords failed {2}deliveryStream=clicks error="outer"$/);
    expect(stack[0]).toBe('    Error: outer');
    expect(stack).toContain('    caused by:');
    expect(stack).toContain('      ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001');
  });

  it('below its level, says nothing', () => {
    const { log, lines } = capture('json');
    log.debug('noise');
    expect(lines).toEqual([]);
  });

  it('refuse a level or format that does not exist, in the library and in the CLI', () => {
    expect(() => levelFromEnv('info', { FIREHOSE_LOG_LEVEL: 'verbose' })).toThrow(LogSettingError);
    expect(levelFromEnv('warn', {})).toBe('warn');
    expect(levelFromEnv('warn', { FIREHOSE_LOG_LEVEL: 'DEBUG' })).toBe('debug');
    expect(() => formatFromEnv({ FIREHOSE_LOG_FORMAT: 'xml' })).toThrow('FIREHOSE_LOG_FORMAT must be json or pretty; got "xml"');
    expect(formatFromEnv({}, true)).toBe('pretty');
    expect(formatFromEnv({}, false)).toBe('json');
    const cli = spawnSync(process.execPath, [CLI, 'validate', '--config', 'config/example.yaml'], { env: { ...process.env, FIREHOSE_LOG_LEVEL: 'verbose' }, encoding: 'utf8' });
    expect(cli.status).toBe(2);
    expect(cli.stderr).toContain('firehose: FIREHOSE_LOG_LEVEL must be one of debug, info, warn, error; got "verbose"');
  });
});
