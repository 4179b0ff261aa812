// Replays an hour of the S3 archive into a delivery stream from a script, as `firehose replay` does.
//   node examples/replay.mjs streams.yaml s3://my-archive/clicks/ 2026-12-01T10:00:00Z 2026-12-01T11:00:00Z clicks-search [id]
// Run it again with the same arguments and it resumes (or says it finished); Ctrl-C stops it cleanly.
import { loadConfig, replay } from 'firehose';

const [configPath, from, start, end, to, id] = process.argv.slice(2);
const config = await loadConfig(configPath);
const stopping = new AbortController();
process.once('SIGINT', () => stopping.abort());

const result = await replay(config, {
  from,
  start,
  end,
  to,
  ...(id ? { id } : {}),
  maxRecordsPerSecond: 5_000,
  signal: stopping.signal,
  onProgress: (p) => process.stderr.write(`\r${p.recordsBefore + p.records}${p.totalRecords === undefined ? '' : ` of ${p.totalRecords}`} records`),
});
process.stderr.write('\n');
console.log(JSON.stringify({ id: result.id, state: result.state, records: result.records, bytes: result.bytes }));
process.exitCode = result.state === 'stopped' ? 130 : 0;
