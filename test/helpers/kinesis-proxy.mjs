// An HTTP proxy in front of kinesalite, in its own process so that its clock sees calls as they
// arrive on the wire (not delayed by the test process's event loop). It answers chosen GetRecords
// calls with the error responses real Kinesis sends — kinesalite never throttles — and reports
// what it saw at GET /__stats. With <rewrite> 1 it writes every GetRecords answer's JSON as some
// emulators and proxies do — valid, and the same records, but not as Kinesis writes it: indented,
// `/` escaped as `\/` (base64 is full of them), the Data key spelt with a \u escape.
//   node kinesis-proxy.mjs <target-url> <throttle-every-nth> <expire-every-nth> [<rewrite>]
import { createServer, request } from 'node:http';

const [target, throttleEvery, expireEvery, rewrite] = process.argv.slice(2);
const upstream = new URL(target);
const getRecordsAt = [];
const injected = { ProvisionedThroughputExceededException: 0, ExpiredIteratorException: 0, rewritten: 0 };

function rewritten(json) {
  return JSON.stringify(JSON.parse(json), null, 1).replaceAll('/', '\\/').replaceAll('"Data":', '"\\u0044ata":');
}

function faultFor(call) {
  if (call % Number(throttleEvery) === 0) return 'ProvisionedThroughputExceededException';
  if (call % Number(expireEvery) === 0) return 'ExpiredIteratorException';
  return undefined;
}

const server = createServer((req, res) => {
  if (req.url === '/__stats') {
    res.end(JSON.stringify({ getRecordsAt, injected }));
    return;
  }
  const body = [];
  req.on('data', (d) => body.push(d));
  req.on('end', () => {
    if (req.headers['x-amz-target'] === 'Kinesis_20131202.GetRecords') {
      getRecordsAt.push(Date.now());
      const fault = faultFor(getRecordsAt.length);
      if (fault) {
        injected[fault]++;
        const payload = JSON.stringify({ __type: fault, message: fault === 'ExpiredIteratorException' ? 'Iterator expired.' : 'Rate exceeded for shard.' });
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(payload) });
        res.end(payload);
        return;
      }
    }
    const rewrites = rewrite === '1' && req.headers['x-amz-target'] === 'Kinesis_20131202.GetRecords';
    const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (reply) => {
      if (!rewrites || reply.statusCode !== 200) {
        res.writeHead(reply.statusCode ?? 500, reply.headers);
        reply.pipe(res);
        return;
      }
      const parts = [];
      reply.on('data', (d) => parts.push(d));
      reply.on('end', () => {
        const payload = Buffer.from(rewritten(Buffer.concat(parts).toString('utf8')));
        injected.rewritten++;
        const { 'content-length': _length, 'x-amz-crc32': _crc, ...headers } = reply.headers;
        res.writeHead(200, { ...headers, 'content-length': payload.length });
        res.end(payload);
      });
    });
    forward.on('error', () => res.destroy());
    forward.end(Buffer.concat(body));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
