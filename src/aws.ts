import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * HTTP settings every AWS client here gets. A request timeout always — a dead connection must not
 * hang a shard reader or a delivery forever — and HTTP/1.1: emulators (kinesalite, LocalStack)
 * do not speak the HTTP/2 the newest Kinesis client would otherwise use, and nothing this service
 * calls needs it.
 */
export function httpSettings(endpoint: string | undefined, requestTimeoutMs: number) {
  return {
    ...(endpoint ? { endpoint } : {}),
    requestHandler: new NodeHttpHandler({ requestTimeout: requestTimeoutMs, connectionTimeout: 5_000 }),
  };
}

/** The name of the error an AWS SDK call threw (`ProvisionedThroughputExceededException`, …). */
export function awsErrorName(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'name' in err && typeof err.name === 'string') return err.name;
  return undefined;
}
