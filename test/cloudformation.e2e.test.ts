import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';
import { SequenceTracker, checkpoints, createStream, multiset, putAll, readObjects, suitePeers, waitFor, type Peers } from './helpers/harness.js';

const BUCKET = 'cfn-archive';
const BACKUP = 'cfn-source-backup';
const uppercase = fileURLToPath(new URL('./fixtures/transforms/blueprint.js', import.meta.url));

/**
 * A CloudFormation AWS::KinesisFirehose::DeliveryStream's Properties, camelCased as they are, with
 * only the local endpoints added: IAM roles, CloudWatch logging and tags mean nothing here.
 */
function definition(peers: Peers): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200 }
deliveryStreams:
  - deliveryStreamName: clicks-archive
    deliveryStreamType: KinesisStreamAsSource
    tags: [{ key: team, value: data }]
    kinesisStreamSourceConfiguration:
      kinesisStreamARN: arn:aws:kinesis:us-east-1:000000000000:stream/cfn-clicks
      roleARN: arn:aws:iam::000000000000:role/firehose-read
      endpoint: "${peers.kinesis.endpoint}"
    extendedS3DestinationConfiguration:
      bucketARN: arn:aws:s3:::${BUCKET}
      roleARN: arn:aws:iam::000000000000:role/firehose-write
      prefix: "clicks/"
      errorOutputPrefix: "clicks-errors/"
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      compressionFormat: GZIP
      cloudWatchLoggingOptions: { enabled: true, logGroupName: /aws/kinesisfirehose/clicks, logStreamName: DestinationDelivery }
      encryptionConfiguration: { noEncryptionConfig: NoEncryption }
      processingConfiguration:
        enabled: true
        processors:
          - type: Lambda
            parameters:
              - { parameterName: Module, parameterValue: "${uppercase}" }
              - { parameterName: BufferSizeInMBs, parameterValue: "1" }
      s3BackupMode: Enabled
      s3BackupConfiguration:
        bucketARN: arn:aws:s3:::${BACKUP}
        roleARN: arn:aws:iam::000000000000:role/firehose-backup
        prefix: "source/"
        bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
        compressionFormat: GZIP
        cloudWatchLoggingOptions: { enabled: true, logGroupName: /aws/kinesisfirehose/clicks, logStreamName: BackupDelivery }
      endpoint: "${peers.s3.endpoint}"
`;
}

describe('a CloudFormation definition lifts over', () => {
  const peers = suitePeers([BUCKET, BACKUP]);

  it('validates with a note per ignored property, and runs: transformed objects in the bucket, every source record as read in the backup', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'firehose-cfn-'));
    const path = join(dir, 'stack.yaml');
    await writeFile(path, definition(peers));

    const validate = firehose(['validate', '--config', path]);
    expect((await validate.exited).code).toBe(0);
    const notes = validate.stdout().split('\n').filter((l) => l.startsWith('note: '));
    for (const ignored of [
      'deliveryStreams[0].tags: ignored',
      'deliveryStreams[0].kinesisStreamSourceConfiguration.roleARN: ignored: credentials come from the AWS SDK default chain',
      'deliveryStreams[0].extendedS3DestinationConfiguration.roleARN: ignored',
      'deliveryStreams[0].extendedS3DestinationConfiguration.cloudWatchLoggingOptions: ignored: logs go to stderr',
      'deliveryStreams[0].extendedS3DestinationConfiguration.s3BackupConfiguration.roleARN: ignored',
      'deliveryStreams[0].extendedS3DestinationConfiguration.s3BackupConfiguration.cloudWatchLoggingOptions: ignored',
      'deliveryStreams[0].deliveryStreamType: KinesisStreamAsSource',
      'deliveryStreams[0].extendedS3DestinationConfiguration: read as s3Destination',
    ]) {
      expect(notes.some((n) => n.startsWith(`note: ${ignored}`)), ignored).toBe(true);
    }
    expect(notes).toHaveLength(9);

    await createStream(peers.kinesisClient, 'cfn-clicks', 2);
    const run = firehose(['run', '--config', path]);
    const input = Array.from({ length: 5_000 }, (_, i) => Buffer.from(`click ${i} on page-${i % 17} ${'x'.repeat(200 + (i % 50))}\n`));
    const sequences = new SequenceTracker();
    try {
      await waitFor(() => /"msg":"started"/.test(run.stderr()), 20_000, 'the service to start');
      (await putAll(peers.kinesisClient, 'cfn-clicks', input.map((data, i) => ({ data, partitionKey: `k${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
      await waitFor(() => (run.stderr().match(/"msg":"delivered"/g) ?? []).length >= 1, 30_000, 'a first object');
    } finally {
      run.child.kill('SIGTERM');
    }
    expect((await run.exited).code).toBe(0);

    // The bucket holds what the transform made of every record; the backup, every record as it was read.
    const delivered = (await readObjects(peers.s3Client, BUCKET, 'clicks/')).map((o) => o.body.toString('utf8'));
    expect(multiset(delivered.join('').split(/(?<=\n)/).map((l) => Buffer.from(l)))).toEqual(multiset(input.map((b) => Buffer.from(b.toString('utf8').toUpperCase()))));
    const backups = await readObjects(peers.s3Client, BACKUP, 'source/');
    expect(backups.length).toBeGreaterThan(0);
    for (const o of backups) expect(o.key).toMatch(/^source\/\d{4}\/\d\d\/\d\d\/\d\d\/clicks-archive-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9a-f-]{36}\.gz$/);
    expect(multiset(Buffer.concat(backups.map((o) => o.body)).toString('utf8').split(/(?<=\n)/).map((l) => Buffer.from(l)))).toEqual(multiset(input));
    // Each backup object has its manifest, so the source records can be replayed (through a fixed transform, say).
    const manifests = await readObjects(peers.s3Client, BACKUP, '_manifests/');
    expect(manifests.map((m) => m.key.replace(/^_manifests\/\d{4}\/\d\d\/\d\d\/\d\d\//, '').replace('.manifest.json.gz', '')).sort()).toEqual(backups.map((o) => o.key).sort());
    // Checkpointed at each shard's last record: both the object and the copy of every record were written.
    expect(await checkpoints(peers.redisClient, 'clicks-archive')).toEqual(Object.fromEntries(sequences.lastByShard));
  }, 120_000);
});
