// cloudwatch-logs-unpack: turn CloudWatch Logs subscription records (gzip'd JSON, one batch of log
// events each) into the log events themselves, one per line — what AWS's
// kinesis-firehose-cloudwatch-logs-processor blueprint does.
//   CWL_OUTPUT  "message" (default): each event's message as a line
//               "json": each event as a JSON line {logGroup, logStream, id, timestamp, message}
// CONTROL_MESSAGE records (sent when a subscription is set up) are Dropped. A record that is not
// a gzip'd subscription payload is marked ProcessingFailed.
import { gunzipSync } from 'node:zlib';

const asJson = process.env.CWL_OUTPUT === 'json';

export const handler = async (event) => ({
  records: event.records.map((record) => {
    let payload;
    try {
      payload = JSON.parse(gunzipSync(Buffer.from(record.data, 'base64')).toString('utf8'));
    } catch {
      return { recordId: record.recordId, result: 'ProcessingFailed', data: record.data };
    }
    if (payload.messageType === 'CONTROL_MESSAGE') return { recordId: record.recordId, result: 'Dropped', data: record.data };
    if (payload.messageType !== 'DATA_MESSAGE' || !Array.isArray(payload.logEvents)) {
      return { recordId: record.recordId, result: 'ProcessingFailed', data: record.data };
    }
    const lines = payload.logEvents.map((e) =>
      asJson
        ? JSON.stringify({ logGroup: payload.logGroup, logStream: payload.logStream, id: e.id, timestamp: e.timestamp, message: e.message })
        : e.message,
    );
    return { recordId: record.recordId, result: 'Ok', data: Buffer.from(lines.map((l) => l + '\n').join('')).toString('base64') };
  }),
});
