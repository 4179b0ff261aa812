import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedRequest {
  readonly requestId: string;
  readonly headers: IncomingMessage['headers'];
  readonly records: Buffer[];
  readonly status: number;
  /** Answered as the spec defines success: 200 with the request id echoed. */
  readonly accepted: boolean;
}

export type Reply = { status: number; body?: unknown; contentType?: string };

/**
 * A receiver for Firehose's HTTP endpoint protocol that checks every request against the spec
 * (headers, body schema, request id in header and body) and answers as `reply` says.
 */
export async function startReceiver(options: { accessKey?: string; sourceArn: string; reply: (n: number, requestId: string) => Reply }) {
  const requests: ReceivedRequest[] = [];
  const violations: string[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      n++;
      const raw = Buffer.concat(chunks);
      const check = (ok: boolean, what: string) => {
        if (!ok) violations.push(`request ${n}: ${what}`);
      };
      check(req.method === 'POST', `method ${req.method}`);
      check(req.headers['content-type'] === 'application/json', `content-type ${req.headers['content-type']}`);
      check(req.headers['x-amz-firehose-protocol-version'] === '1.0', 'protocol version');
      check(req.headers['x-amz-firehose-source-arn'] === options.sourceArn, `source arn ${req.headers['x-amz-firehose-source-arn']}`);
      check(Number(req.headers['content-length']) === raw.length, 'content-length');
      if (options.accessKey !== undefined) check(req.headers['x-amz-firehose-access-key'] === options.accessKey, 'access key');
      let body: { requestId?: unknown; timestamp?: unknown; records?: Array<{ data?: unknown }> } = {};
      try {
        const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        body = JSON.parse(text);
      } catch (err) {
        violations.push(`request ${n}: body is not (gzip'd) JSON: ${(err as Error).message}`);
      }
      const requestId = String(req.headers['x-amz-firehose-request-id'] ?? '');
      check(/^[0-9a-f-]{36}$/.test(requestId), `request id header ${requestId}`);
      check(body.requestId === requestId, 'requestId in the body differs from the header');
      check(Number.isInteger(body.timestamp), 'timestamp is not an integer');
      check(Array.isArray(body.records) && body.records.length >= 1 && body.records.length <= 10_000, 'records: 1–10,000');
      const records = (body.records ?? []).map((r) => {
        check(typeof r.data === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(r.data), 'record data is not base64');
        return Buffer.from(String(r.data), 'base64');
      });
      const reply = options.reply(n, requestId);
      const echoed = reply.body === undefined || (typeof reply.body === 'object' && (reply.body as { requestId?: unknown }).requestId === requestId);
      requests.push({ requestId, headers: req.headers, records, status: reply.status, accepted: reply.status === 200 && echoed });
      const payload = reply.body === undefined ? JSON.stringify({ requestId, timestamp: Date.now() }) : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/firehose`,
    requests,
    violations,
    /** Records of the requests answered 200 with the echoed id. */
    delivered(): Buffer[] {
      return requests.filter((r) => r.accepted).flatMap((r) => r.records);
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
