import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * Settings every AWS client gets when it talks to a custom endpoint (kinesalite, LocalStack,
 * s3rver, MinIO). Emulators speak HTTP/1.1 — the newest Kinesis client's HTTP/2 default fails
 * against them — and S3-compatible stores vary in the checksums they understand.
 */
export function customEndpointDefaults(endpoint: string | undefined, requestTimeoutMs: number) {
  if (!endpoint) return {};
  return {
    endpoint,
    requestHandler: new NodeHttpHandler({ requestTimeout: requestTimeoutMs, connectionTimeout: 5_000 }),
  };
}

/** The name of the error an AWS SDK call threw (`ProvisionedThroughputExceededException`, …). */
export function awsErrorName(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'name' in err && typeof err.name === 'string') return err.name;
  return undefined;
}
