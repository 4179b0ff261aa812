import { describe, expect, it } from 'vitest';
import { rotatedIndex } from '../destinations/opensearch/index.js';
import { parseConfig } from '../src/config.js';
import { DeadLetterQueue, dlqConnection } from '../src/dlq.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { startBulkServer } from './helpers/bulk-server.js';
import { SequenceTracker, checkpoints, createStream, putAll, readObjects, suitePeers, waitFor, type Peers } from './helpers/harness.js';

const BUCKET = 'os-backup';

function yaml(peers: Peers, name: string, url: string, dlq: boolean): string {
  return `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, shutdownTimeoutInSeconds: 30, deadLetterQueue: { enabled: ${dlq} } }
deliveryStreams:
  - deliveryStreamName: ${name}
    kinesisStreamSource: { streamName: ${name}, endpoint: "${peers.kinesis.endpoint}", idleTimeBetweenReadsInMillis: 200 }
    amazonOpenSearchServiceDestination:
      clusterEndpoint: "${url}"
      indexName: logs
      indexRotationPeriod: OneDay
      bufferingHints: { sizeInMBs: 1, intervalInSeconds: 60 }
      retryOptions: { durationInSeconds: 60 }
      s3BackupMode: FailedDocumentsOnly
      s3Configuration: { bucket: ${BUCKET}, prefix: "${name}/", errorOutputPrefix: "${name}-failed/", endpoint: "${peers.s3.endpoint}" }
`;
}

describe('OpenSearch destination (against a _bulk server with real per-item errors)', () => {
  const peers = suitePeers([BUCKET]);

  const documents = Array.from({ length: 1_000 }, (_, i) =>
    JSON.stringify({ i, kind: i % 50 === 7 ? 'bad' : i % 25 === 3 ? 'busy' : 'ok', message: `event ${i}` }),
  );
  const decide = (doc: Record<string, unknown>, attempt: number) => (doc.kind === 'bad' ? 400 : doc.kind === 'busy' && attempt === 1 ? 429 : 201);

  for (const dlq of [true, false]) {
    it(`429s are indexed on retry, 400s fail alone into ${dlq ? 'the DLQ and' : ''} the failed-documents backup, everything else is indexed once in the rotated index`, async () => {
      const name = dlq ? 'osdlq' : 'osbackup';
      const startedAt = Date.now();
      const cluster = await startBulkServer(decide);
      await createStream(peers.kinesisClient, name, 2);
      const service = await startService(parseConfig(yaml(peers, name, cluster.url, dlq)), { log: silentLogger });
      const sequences = new SequenceTracker();
      const put = await putAll(peers.kinesisClient, name, documents.map((d, i) => ({ data: Buffer.from(d), partitionKey: `k${i}` })));
      put.forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
      await waitFor(() => service.streams[0]!.stats.recordsRead === 1_000, 30_000, 'every record read');
      expect(await service.stop()).toBe(true);
      await cluster.stop();

      const bad = documents.filter((d) => JSON.parse(d).kind === 'bad');
      const good = documents.filter((d) => JSON.parse(d).kind !== 'bad');
      // Every good document (the 429s included) indexed exactly once, in logs-YYYY-MM-DD of its arrival.
      expect(cluster.indexed.size).toBe(good.length);
      expect([...cluster.indexed.values()].every((v) => v.count === 1)).toBe(true);
      expect([...cluster.indexed.values()].map((v) => v.source).sort()).toEqual([...good].sort());
      // Named by the records' arrival day (the run may straddle midnight UTC).
      const days = new Set([rotatedIndex('logs', 'OneDay', startedAt), rotatedIndex('logs', 'OneDay', Date.now())]);
      for (const key of cluster.indexed.keys()) expect(days).toContain(key.split('/')[0]);
      expect(service.streams[0]!.stats.recordsDelivered).toBe(good.length);

      if (dlq) {
        const redis = dlqConnection({ url: peers.redis.url });
        const queue = new DeadLetterQueue(redis, name, 1 << 30);
        const letters = await queue.list();
        await queue.close();
        redis.disconnect();
        expect(letters.map((l) => Buffer.from(l.letter.data, 'base64').toString()).sort()).toEqual([...bad].sort());
        expect(new Set(letters.map((l) => l.letter.errorCode))).toEqual(new Set(['OpenSearch.mapper_parsing_exception']));
      }
      {
        // In the failed-documents backup too (with the DLQ on, as copies of the parked records).
        const lines = (await readObjects(peers.s3Client, BUCKET, `${name}-failed/AmazonOpenSearchService-failed/`))
          .flatMap((o) => o.body.toString().split('\n').slice(0, -1))
          .map((l) => JSON.parse(l) as { rawData: string; esDocumentId: string; esIndexName: string; errorCode: string; errorMessage: string });
        expect(lines.map((l) => Buffer.from(l.rawData, 'base64').toString()).sort()).toEqual([...bad].sort());
        for (const l of lines) {
          expect(days).toContain(l.esIndexName);
          expect(l.esDocumentId).toMatch(/^[A-Za-z0-9_-]{27}$/);
          expect(l.errorMessage).toContain('400: failed to parse');
        }
      }
      expect(await checkpoints(peers.redisClient, name)).toEqual(Object.fromEntries(sequences.lastByShard));
    });
  }
});
