import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { createStream, framedRecord, multiset, putAll, readObjects, serviceYaml, splitFramed, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'encrypted';
const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** Forwards every request to s3rver as it came, keeping each one's method, path and headers (s3rver ignores SSE headers, so they are read here). */
async function recordingProxy(target: string) {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const forward = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stop: () => new Promise((r) => server.close(r)) };
}

describe('server-side encryption of the objects written', () => {
  const peers = suitePeers([BUCKET]);

  it.each([
    ['CloudFormation\'s encryptionConfiguration.kmsEncryptionConfig', `      encryptionConfiguration: { kmsEncryptionConfig: { awsKMSKeyARN: "${KEY_ARN}" } }`, 'aws:kms', KEY_ARN],
    ['serverSideEncryption: AES256', '      serverSideEncryption: AES256', 'AES256', undefined],
  ])('%s: every upload asks S3 for it, and every record arrives', async (_name, extra, algorithm, keyId) => {
    const name = algorithm === 'AES256' ? 'sse-s3' : 'sse-kms';
    const proxy = await recordingProxy(peers.s3.endpoint);
    await createStream(peers.kinesisClient, name, 1);
    const yaml = serviceYaml({ ...peers, s3: { ...peers.s3, endpoint: proxy.endpoint } }, [{ deliveryStreamName: name, streamName: name, bucket: BUCKET, sizeInMBs: 1, s3Extra: extra }]);
    const service = await startService(parseConfig(yaml), { log: silentLogger });
    try {
      // 1.5 MB: one object by size (a single PutObject), the rest at the stop.
      const input = Array.from({ length: 1_500 }, (_, i) => framedRecord(Buffer.from(`${name} ${i} ${'z'.repeat(1_000)}`)));
      await putAll(peers.kinesisClient, name, input.map((data, i) => ({ data, partitionKey: `k${i}` })));
      await waitFor(() => service.streams[0]!.stats.recordsRead === 1_500, 20_000, 'the records read');
      expect(await service.stop()).toBe(true);
      const puts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.startsWith(`/${BUCKET}/${name}/`));
      expect(puts.length).toBeGreaterThanOrEqual(2);
      for (const put of puts) {
        expect(put.headers['x-amz-server-side-encryption']).toBe(algorithm);
        expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(keyId);
      }
      const delivered = (await readObjects(peers.s3Client, BUCKET, `${name}/`)).flatMap((o) => splitFramed(o.body));
      expect(multiset(delivered)).toEqual(multiset(input));
    } finally {
      await service.stop();
      await proxy.stop();
    }
  });

  it('refuses a KMS key without aws:kms, and both forms at once', () => {
    const base = (extra: string) => serviceYaml(peers, [{ deliveryStreamName: 'x', streamName: 'x', bucket: BUCKET, s3Extra: extra }]);
    expect(() => parseConfig(base(`      serverSideEncryption: AES256\n      kmsKeyARN: "${KEY_ARN}"`))).toThrow(/s3Destination\.kmsKeyARN: needs serverSideEncryption: aws:kms/);
    expect(() => parseConfig(base(`      serverSideEncryption: AES256\n      encryptionConfiguration: { kmsEncryptionConfig: { awsKMSKeyARN: "${KEY_ARN}" } }`))).toThrow(/give encryptionConfiguration or serverSideEncryption, not both/);
  });
});
