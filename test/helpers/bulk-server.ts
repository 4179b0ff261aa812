import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/**
 * A stand-in for an OpenSearch cluster's _bulk API (no OpenSearch server can be installed here):
 * it parses NDJSON bulk requests and answers with real per-item results. `decide` picks each
 * document's status (201, 400, 429…) from its source and how many times it was sent.
 */
export async function startBulkServer(decide: (document: Record<string, unknown>, attempt: number) => number, port = 0) {
  /** `${index}/${id}` → how many times it was indexed successfully, and its last source. */
  const indexed = new Map<string, { count: number; source: string }>();
  const attempts = new Map<string, number>();
  let requests = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.method !== 'POST' || !req.url?.endsWith('/_bulk')) return send(404, { error: `no handler for ${req.method} ${req.url}` });
      requests++;
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.length > 0);
      const items: unknown[] = [];
      for (let i = 0; i < lines.length; i += 2) {
        const action = JSON.parse(lines[i]!) as { index: { _index: string; _id?: string } };
        const { _index } = action.index;
        const _id = action.index._id ?? randomUUID();
        let document: Record<string, unknown>;
        try {
          document = JSON.parse(lines[i + 1] ?? '') as Record<string, unknown>;
        } catch {
          items.push({ index: { _index, _id, status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse' } } });
          continue;
        }
        const key = `${_index}/${_id}`;
        const attempt = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, attempt);
        const status = decide(document, attempt);
        if (status === 201) {
          indexed.set(key, { count: (indexed.get(key)?.count ?? 0) + 1, source: lines[i + 1]! });
          items.push({ index: { _index, _id, status: 201, result: 'created' } });
        } else if (status === 429) {
          items.push({ index: { _index, _id, status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected execution: queue full' } } });
        } else {
          items.push({ index: { _index, _id, status, error: { type: 'mapper_parsing_exception', reason: `failed to parse field [amount] of type [long]` } } });
        }
      }
      send(200, { took: 1, errors: items.some((it) => (it as { index: { status: number } }).index.status >= 300), items });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    indexed,
    get requests() {
      return requests;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
