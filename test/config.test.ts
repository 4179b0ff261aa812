import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../src/config.js';

const good = {
  redis: { url: 'redis://127.0.0.1:6379' },
  deliveryStreams: [
    {
      deliveryStreamName: 'clicks',
      kinesisStreamSource: { streamName: 'clicks', region: 'us-east-1', startingPosition: 'TRIM_HORIZON' },
      s3Destination: {
        bucket: 'archive',
        prefix: 'clicks/',
        errorOutputPrefix: 'clicks-errors/',
        bufferingHints: { sizeInMBs: 5, intervalInSeconds: 300 },
        compressionFormat: 'GZIP',
      },
    },
  ],
};

type Doc = typeof good;
function variant(change: (doc: Doc & Record<string, unknown>) => void): string {
  const doc = structuredClone(good) as Doc & Record<string, unknown>;
  change(doc);
  return JSON.stringify(doc); // JSON is YAML
}

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the configuration to be rejected');
}

const s3 = (doc: Doc) => doc.deliveryStreams[0]!.s3Destination as Record<string, unknown>;
/** Replaces the S3 destination by an HTTP endpoint destination. */
const http = (doc: Doc, config: Record<string, unknown>) => {
  const stream = doc.deliveryStreams[0] as Record<string, unknown>;
  delete stream.s3Destination;
  stream.httpEndpointDestination = config;
};
const source = (doc: Doc) => doc.deliveryStreams[0]!.kinesisStreamSource as Record<string, unknown>;

describe('configuration', () => {
  it('accepts the README example and fills Firehose defaults', () => {
    const config = parseConfig(variant(() => {}), {});
    const stream = config.deliveryStreams[0]!;
    expect(stream.destination.plugin.configKey).toBe('s3Destination');
    expect(stream.destination.plugin.pipeline(stream.destination.config).buffer).toEqual({
      sizeBytes: 5 * 1024 * 1024,
      intervalMs: 300_000,
      encoding: 'GZIP',
      appendNewlineDelimiter: false,
      perShard: false,
      manifest: true,
    });
    expect(stream.destination.plugin.pipeline(stream.destination.config).exactlyOnce).toBeUndefined();
    expect(config.runtime.checkpointIntervalInMillis).toBe(1_000);
    expect(config.runtime.leaseDurationInSeconds).toBe(10);
  });

  it.each([
    ['size hint below range', (d: Doc) => ((s3(d).bufferingHints as Record<string, unknown>).sizeInMBs = 0),
      'deliveryStreams[0].s3Destination.bufferingHints.sizeInMBs: must be 1–128, got 0'],
    ['size hint above range', (d: Doc) => ((s3(d).bufferingHints as Record<string, unknown>).sizeInMBs = 129),
      'deliveryStreams[0].s3Destination.bufferingHints.sizeInMBs: must be 1–128, got 129'],
    ['interval below range', (d: Doc) => ((s3(d).bufferingHints as Record<string, unknown>).intervalInSeconds = 59),
      'deliveryStreams[0].s3Destination.bufferingHints.intervalInSeconds: must be 60–900, got 59'],
    ['interval not a number', (d: Doc) => ((s3(d).bufferingHints as Record<string, unknown>).intervalInSeconds = 'soon'),
      'deliveryStreams[0].s3Destination.bufferingHints.intervalInSeconds: must be 60–900, got "soon"'],
    ['unknown compression', (d: Doc) => (s3(d).compressionFormat = 'ZSTD'),
      'deliveryStreams[0].s3Destination.compressionFormat: must be one of UNCOMPRESSED | GZIP, got "ZSTD"'],
    ['no bucket', (d: Doc) => delete s3(d).bucket,
      'deliveryStreams[0].s3Destination.bucket: is required (or give bucketARN)'],
    ['bad bucket name', (d: Doc) => (s3(d).bucket = 'No_Such'),
      'deliveryStreams[0].s3Destination.bucket: must be an S3 bucket name'],
    ['misspelt key', (d: Doc) => (s3(d).bufferingHint = {}),
      'deliveryStreams[0].s3Destination: unknown key "bufferingHint"'],
    ['no stream', (d: Doc) => delete source(d).streamName,
      'deliveryStreams[0].kinesisStreamSource.streamName: is required (or give streamARN)'],
    ['bad starting position', (d: Doc) => (source(d).startingPosition = 'EARLIEST'),
      'deliveryStreams[0].kinesisStreamSource.startingPosition: must be one of LATEST | TRIM_HORIZON | AT_TIMESTAMP, got "EARLIEST"'],
    ['AT_TIMESTAMP without a time', (d: Doc) => (source(d).startingPosition = 'AT_TIMESTAMP'),
      'deliveryStreams[0].kinesisStreamSource.startingTimestamp: is required when startingPosition is AT_TIMESTAMP'],
    ['no destination', (d: Doc) => delete (d.deliveryStreams[0] as Record<string, unknown>).s3Destination,
      'deliveryStreams[0]: needs a destination (one of s3Destination | httpEndpointDestination | amazonOpenSearchServiceDestination)'],
    ['an HTTP destination without a backup bucket', (d: Doc) => http(d, { endpointConfiguration: { url: 'https://example.com/in' } }),
      'deliveryStreams[0].httpEndpointDestination.s3Configuration: is required'],
    ['an HTTP endpoint that is not a URL', (d: Doc) => http(d, { endpointConfiguration: { url: 'example.com' }, s3Configuration: { bucket: 'backup' } }),
      'deliveryStreams[0].httpEndpointDestination.endpointConfiguration.url: must be an http:// or https:// URL, got "example.com"'],
    ['an HTTP retry duration out of range', (d: Doc) => http(d, { endpointConfiguration: { url: 'https://x.test' }, retryOptions: { durationInSeconds: 7201 }, s3Configuration: { bucket: 'backup' } }),
      'deliveryStreams[0].httpEndpointDestination.retryOptions.durationInSeconds: must be 0–7200, got 7201'],
    ['HTTP buffering beyond 64 MB', (d: Doc) => http(d, { endpointConfiguration: { url: 'https://x.test' }, bufferingHints: { sizeInMBs: 65 }, s3Configuration: { bucket: 'backup' } }),
      'deliveryStreams[0].httpEndpointDestination.bufferingHints.sizeInMBs: must be 1–64, got 65'],
    ['an OpenSearch domain ARN in place of an endpoint', (d: Doc) => {
      delete (d.deliveryStreams[0] as Record<string, unknown>).s3Destination;
      (d.deliveryStreams[0] as Record<string, unknown>).amazonOpenSearchServiceDestination = { domainARN: 'arn:aws:es:us-east-1:1:domain/x', indexName: 'logs', s3Configuration: { bucket: 'backup' } };
    }, 'deliveryStreams[0].amazonOpenSearchServiceDestination.domainARN: give clusterEndpoint (the cluster URL) instead'],
    ['an OpenSearch index name with capitals', (d: Doc) => {
      delete (d.deliveryStreams[0] as Record<string, unknown>).s3Destination;
      (d.deliveryStreams[0] as Record<string, unknown>).amazonOpenSearchServiceDestination = { clusterEndpoint: 'https://os.test:9200', indexName: 'Logs', s3Configuration: { bucket: 'backup' } };
    }, 'deliveryStreams[0].amazonOpenSearchServiceDestination.indexName: must be an index name (lowercase'],
    ['two destinations', (d: Doc) => ((d.deliveryStreams[0] as Record<string, unknown>).httpEndpointDestination = { endpointConfiguration: { url: 'https://x.test' }, s3Configuration: { bucket: 'backup' } }),
      'deliveryStreams[0]: has 2 destinations (s3Destination, httpEndpointDestination); a delivery stream has exactly one'],
    ['source record backup without its bucket', (d: Doc) => (s3(d).s3BackupMode = 'Enabled'),
      'deliveryStreams[0].s3Destination.s3BackupConfiguration: is required with s3BackupMode: Enabled'],
    ['source record backup with a transform of its own', (d: Doc) => { s3(d).s3BackupMode = 'Enabled'; s3(d).s3BackupConfiguration = { bucket: 'backup', processingConfiguration: { enabled: false } }; },
      'deliveryStreams[0].s3Destination.s3BackupConfiguration.processingConfiguration: does not apply to a backup'],
    ['a bad bucket in the backup configuration', (d: Doc) => { s3(d).s3BackupMode = 'Enabled'; s3(d).s3BackupConfiguration = { bucket: 'Backup' }; },
      'deliveryStreams[0].s3Destination.s3BackupConfiguration.bucket: must be an S3 bucket name'],
    ['a CloudFormation Direct PUT stream', (d: Doc) => ((d.deliveryStreams[0] as Record<string, unknown>).deliveryStreamType = 'DirectPut'),
      'deliveryStreams[0].deliveryStreamType: must be KinesisStreamAsSource, got "DirectPut"'],
    ['a bad key under a CloudFormation destination name', (d: Doc) => {
      const stream = d.deliveryStreams[0] as Record<string, unknown>;
      stream.extendedS3DestinationConfiguration = { ...s3(d), prefix: 5 };
      delete stream.s3Destination;
    }, 'deliveryStreams[0].extendedS3DestinationConfiguration.prefix: expected string, got number'],
    ['bad delivery stream name', (d: Doc) => (d.deliveryStreams[0]!.deliveryStreamName = 'has space'),
      'deliveryStreams[0].deliveryStreamName: must be a delivery stream name'],
    ['bad redis url', (d: Doc) => (d.redis.url = 'localhost:6379'),
      'redis.url: must be a redis:// or rediss:// URL, got "localhost:6379"'],
    ['partition key without dynamic partitioning', (d: Doc) => (s3(d).prefix = 'c=!{partitionKeyFromQuery:c}/'),
      'deliveryStreams[0].s3Destination.prefix: partition keys (!{partitionKeyFrom…}) need dynamicPartitioningConfiguration.enabled: true'],
    ['prefix expressions without an error prefix', (d: Doc) => { s3(d).prefix = 'd=!{timestamp:yyyy-MM-dd}/'; delete s3(d).errorOutputPrefix; },
      'deliveryStreams[0].s3Destination.errorOutputPrefix: is required when prefix has !{...} expressions'],
    ['error-output-type in the object prefix', (d: Doc) => (s3(d).prefix = 'x/!{firehose:error-output-type}/'),
      'deliveryStreams[0].s3Destination.prefix: !{firehose:error-output-type} can only be used in errorOutputPrefix'],
    ['a transform module that does not exist', (d: Doc) => (s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'Lambda', parameters: { module: './nope.js' } }] }),
      'deliveryStreams[0].s3Destination.processingConfiguration.processors[0].parameters.module: no such file'],
    ['processor buffer out of range (CloudFormation parameter list)', (d: Doc) => (s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'Lambda', parameters: [{ parameterName: 'Module', parameterValue: 'filter' }, { parameterName: 'BufferSizeInMBs', parameterValue: '5' }] }] }),
      'deliveryStreams[0].s3Destination.processingConfiguration.processors[0].parameters.bufferSizeInMBs: must be 0.2–3, got 5'],
    ['a query key the prefix uses but the query lacks', (d: Doc) => {
      s3(d).prefix = 'c=!{partitionKeyFromQuery:customer}/';
      s3(d).bufferingHints = { sizeInMBs: 64, intervalInSeconds: 60 };
      s3(d).dynamicPartitioningConfiguration = { enabled: true };
      s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'MetadataExtraction', parameters: { metadataExtractionQuery: '{region: .region}' } }] };
    }, 'deliveryStreams[0].s3Destination.prefix: !{partitionKeyFromQuery:customer}: no MetadataExtraction processor query produces "customer"'],
    ['a query outside the supported jq', (d: Doc) => (s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'MetadataExtraction', parameters: { metadataExtractionQuery: '{c: .a | length}' } }] }),
      'processors[0].parameters.metadataExtractionQuery: {c: .a | length}: filter "length" is not supported'],
    ['stream ARN that is not one', (d: Doc) => (source(d).streamARN = 'arn:aws:s3:::clicks'),
      'deliveryStreams[0].kinesisStreamSource.streamARN: must be a Kinesis stream ARN'],
    ['format conversion with GZIP', (d: Doc) => (s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'string' }] }),
      'deliveryStreams[0].s3Destination.compressionFormat: must be UNCOMPRESSED with format conversion, got GZIP: Parquet compresses inside the file'],
    ['format conversion with a small buffer', (d: Doc) => { s3(d).compressionFormat = 'UNCOMPRESSED'; s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'string' }] }; },
      'deliveryStreams[0].s3Destination.bufferingHints.sizeInMBs: must be 64–128 with format conversion (as in Firehose), got 5'],
    ['a column type that does not exist', (d: Doc) => (s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'string' }, { name: 'b', type: 'struct<x:int,y:bogus>' }] }),
      'deliveryStreams[0].s3Destination.dataFormatConversionConfiguration.schema[1].type: "struct<x:int,y:bogus>": unknown type "bogus"'],
    ['a decimal beyond 38 digits', (d: Doc) => (s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'decimal(40,2)' }] }),
      'decimal(40,2) needs 1 ≤ precision ≤ 38 and scale ≤ precision'],
    ['a Glue table in place of a schema', (d: Doc) => (s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'string' }], schemaConfiguration: { databaseName: 'db', tableName: 't' } }),
      'dataFormatConversionConfiguration.schemaConfiguration: Glue tables are not read from here'],
    ['no delivery streams', (d: Doc) => (d.deliveryStreams = []),
      'deliveryStreams: needs at least one delivery stream'],
    ['exactlyOnce with dynamic partitioning', (d: Doc) => {
      s3(d).exactlyOnce = true;
      s3(d).prefix = 'c=!{partitionKeyFromQuery:customer}/';
      s3(d).bufferingHints = { sizeInMBs: 64, intervalInSeconds: 60 };
      s3(d).dynamicPartitioningConfiguration = { enabled: true };
      s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'MetadataExtraction', parameters: { metadataExtractionQuery: '{customer: .customer}' } }] };
    }, 'deliveryStreams[0].s3Destination.dynamicPartitioningConfiguration: is not supported with exactlyOnce yet'],
    ['exactlyOnce with Parquet', (d: Doc) => { s3(d).exactlyOnce = true; s3(d).compressionFormat = 'UNCOMPRESSED'; s3(d).bufferingHints = { sizeInMBs: 64 }; s3(d).dataFormatConversionConfiguration = { schema: [{ name: 'a', type: 'string' }] }; },
      'deliveryStreams[0].s3Destination.dataFormatConversionConfiguration: is not supported with exactlyOnce yet'],
    ['a lease duration below 2 s', (d: Doc) => ((d as Record<string, unknown>).runtime = { leaseDurationInSeconds: 1 }),
      'runtime.leaseDurationInSeconds: must be 2–300, got 1'],
  ])('rejects %s, naming the path', (_name, change, expected) => {
    expect(problems(variant(change as (d: Doc) => void)).join('\n')).toContain(expected);
  });

  it('reports every problem at once', () => {
    const found = problems(
      variant((d) => {
        (s3(d).bufferingHints as Record<string, unknown>).sizeInMBs = 0;
        (s3(d).bufferingHints as Record<string, unknown>).intervalInSeconds = 1000;
        source(d).startingPosition = 'NOW';
        d.deliveryStreams.push(structuredClone(d.deliveryStreams[0]!));
      }),
    );
    expect(found).toHaveLength(6);
    expect(found).toContain('deliveryStreams[1].s3Destination.bufferingHints.intervalInSeconds: must be 60–900, got 1000');
  });

  it('reports a bad processor beside every other problem of its stream', () => {
    const found = problems(
      variant((d) => {
        s3(d).processingConfiguration = { enabled: true, processors: [{ type: 'Lambda', parameters: { module: './no-such-handler.js', bufferSizeInMBs: 9 } }] };
        s3(d).prefix = 5;
        source(d).startingPosition = 'NOW';
      }),
    );
    expect(found).toEqual([
      expect.stringMatching(/^deliveryStreams\[0\]\.kinesisStreamSource\.startingPosition: /),
      'deliveryStreams[0].s3Destination.prefix: expected string, got number 5',
      expect.stringMatching(/^deliveryStreams\[0\]\.s3Destination\.processingConfiguration\.processors\[0\]\.parameters\.module: no such file: .*no-such-handler\.js$/),
      'deliveryStreams[0].s3Destination.processingConfiguration.processors[0].parameters.bufferSizeInMBs: must be 0.2–3, got 9',
    ]);
  });

  it('rejects two delivery streams with one name', () => {
    const yaml = variant((d) => d.deliveryStreams.push(structuredClone(d.deliveryStreams[0]!)));
    expect(problems(yaml)).toEqual(['deliveryStreams[1].deliveryStreamName: "clicks" is used by another delivery stream']);
  });

  it('reports YAML syntax errors', () => {
    expect(problems('deliveryStreams: [\n  - a: b\n')[0]).toMatch(/^YAML:/);
  });

  it('interpolates ${VAR} and ${VAR:-default}, typed when a whole value', () => {
    const yaml = `
redis: { url: "\${REDIS_URL:-redis://127.0.0.1:6379}" }
deliveryStreams:
  - deliveryStreamName: \${NAME}
    kinesisStreamSource: { streamName: "\${NAME}-in" }
    s3Destination:
      bucket: archive
      prefix: "\${NAME}/literal-$\${NOT_A_VAR}/"
      bufferingHints:
        sizeInMBs: \${SIZE:-7}
        intervalInSeconds: "\${INTERVAL}"
`;
    const config = parseConfig(yaml, { NAME: 'orders', INTERVAL: '120' });
    const stream = config.deliveryStreams[0]!;
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(stream.deliveryStreamName).toBe('orders');
    expect(stream.source.config).toMatchObject({ streamName: 'orders-in' });
    expect(stream.destination.config).toMatchObject({
      prefix: 'orders/literal-${NOT_A_VAR}/',
      bufferingHints: { sizeInMBs: 7, intervalInSeconds: 120 },
    });
    expect(problems(yaml, { NAME: 'orders' })).toEqual([
      'deliveryStreams[0].s3Destination.bufferingHints.intervalInSeconds: environment variable INTERVAL is not set (write ${INTERVAL:-default} to give a default)',
    ]);
  });

  it('takes the stream name and region from a stream ARN, and the bucket from a bucket ARN', () => {
    const stream = parseConfig(readFileSync(new URL('../config/example.yaml', import.meta.url), 'utf8'), {}).deliveryStreams[0]!;
    expect(stream.source.config).toMatchObject({ streamName: 'clicks', region: 'us-east-1' });
    expect(stream.destination.config).toMatchObject({ bucket: 'my-clicks-archive' });
  });

  it('says what type was expected and what it got, with the path', () => {
    const one = (fields: string) => problems(`
deliveryStreams:
  - deliveryStreamName: a
    kinesisStreamSource: { streamName: a }
    s3Destination: { bucket: abc${fields} }
`);
    expect(one(', prefix: 5')).toEqual(['deliveryStreams[0].s3Destination.prefix: expected string, got number 5']);
    expect(one(', bufferingHints: 64')).toEqual(['deliveryStreams[0].s3Destination.bufferingHints: expected object, got number 64']);
  });

  it('says what to do with an unquoted ${…} in a flow mapping', () => {
    const found = problems(`
deliveryStreams:
  - deliveryStreamName: a
    kinesisStreamSource: { streamName: a }
    s3Destination: { bucket: abc, bufferingHints: { sizeInMBs: \${SIZE:-5} } }
`);
    expect(found.at(-1)).toContain('quote it ("${SIZE:-5}") or write that mapping in block style');
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', ...'bcdef'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcde'[i]}`).join(',')}]`), 'deliveryStreams: []'].join('\n');
    expect(problems(bomb)[0]).toMatch(/^YAML: Excessive alias count/);
  });

  it('refuses a file that is not UTF-8, naming the byte and line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'firehose-config-'));
    const path = join(dir, 'latin1.yaml');
    await writeFile(path, Buffer.concat([Buffer.from('deliveryStreams:\n  - deliveryStreamName: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await expect(loadConfig(path, {})).rejects.toThrow(/is not UTF-8 text: byte 44 \(line 2\) is 0xe9/);
  });

  it('checks that an OpenSearch CA file exists', () => {
    const found = problems(`
deliveryStreams:
  - deliveryStreamName: a
    kinesisStreamSource: { streamName: a }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "https://search.example.com:9200"
      indexName: logs
      s3Configuration: { bucket: abc }
      tls: { caFile: /nonexistent/ca.pem }
`);
    expect(found).toEqual(["deliveryStreams[0].amazonOpenSearchServiceDestination.tls.caFile: no such file (a PEM file with the CA that signed the cluster's certificate)"]);
  });
});
