// Why not zlib-sync: it offers inflate only (no deflate or gzip, which is what the pipeline does),
// and this measures its inflate against node:zlib's on the same bytes, in one run. Not part of npm
// test; the candidate is not a project dependency (a native addon, built with node-gyp):
//   npm install --no-save zlib-sync && npm rebuild zlib-sync   (npm 11: npm install-scripts approve zlib-sync first)
//   node bench/zlib-sync.mjs [MiB]
import { createRequire } from 'node:module';
import { deflateSync, inflateSync } from 'node:zlib';

const require = createRequire(import.meta.url);
const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
/** A JSON log line of the kind the dev mode produces (varied, ~200 bytes). */
const sampleLogRecord = (i = Math.floor(Math.random() * 1e9)) =>
  JSON.stringify({ ts: new Date(Date.UTC(2026, 0, 1) + i).toISOString(), level: LEVELS[i % 4], service: `svc-${i % 37}`, user: `user-${(i * 2654435761) % 100000}`, latencyMs: (i % 9973) / 7, path: `/api/v1/items/${i % 5000}`, msg: `request ${i} handled` });
const MIB = 1024 * 1024;
const size = Number(process.argv[2] ?? 64) * MIB;
const lines = [];
let total = 0;
while (total < size) {
  const line = sampleLogRecord() + '\n';
  lines.push(line);
  total += line.length;
}
const raw = Buffer.from(lines.join(''));
const compressed = deflateSync(raw, { level: 6 });
console.log(`input: ${(raw.length / MIB).toFixed(1)} MiB of JSON log lines, zlib level 6 → ${(compressed.length / MIB).toFixed(1)} MiB`);

const zlibSync = require('zlib-sync');
console.log(`zlib-sync exports: ${Object.keys(zlibSync).filter((k) => !k.startsWith('Z_')).join(', ')} (no Deflate, no gzip)`);

function time(name, run) {
  const rounds = [];
  for (let i = 0; i < 5; i++) {
    const started = process.hrtime.bigint();
    const out = run();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (out.length !== raw.length || !out.equals(raw)) throw new Error(`${name}: output differs`);
    rounds.push(raw.length / MIB / seconds);
  }
  rounds.sort((a, b) => a - b);
  return { name, median: rounds[2] };
}

const CHUNK = 64 * 1024;
const results = [
  time('node:zlib inflateSync', () => inflateSync(compressed)),
  time('zlib-sync Inflate (64 KiB pushes, as a stream)', () => {
    // Each push with a flush leaves that push's output in .result (its use: a websocket's messages).
    const inflate = new zlibSync.Inflate({ chunkSize: CHUNK });
    const parts = [];
    for (let i = 0; i < compressed.length; i += CHUNK) {
      const last = i + CHUNK >= compressed.length;
      inflate.push(compressed.subarray(i, i + CHUNK), last ? zlibSync.Z_FINISH : zlibSync.Z_SYNC_FLUSH);
      if (inflate.err < 0) throw new Error(inflate.msg);
      if (inflate.result) parts.push(inflate.result);
    }
    return Buffer.concat(parts);
  }),
  time('zlib-sync Inflate (one push)', () => {
    const inflate = new zlibSync.Inflate({ chunkSize: CHUNK });
    inflate.push(compressed, zlibSync.Z_FINISH);
    if (inflate.err < 0) throw new Error(inflate.msg);
    return Buffer.from(inflate.result);
  }),
];
const base = results[0].median;
for (const r of results) console.log(`${r.name.padEnd(48)} ${r.median.toFixed(0).padStart(5)} MiB/s  ${(r.median / base).toFixed(2)}×`);

