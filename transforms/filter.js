// filter: drop (or keep only) the JSON records whose field matches. Dropped records are counted,
// not delivered, as Firehose does with result "Dropped".
//   FILTER_FIELD   the field to look at, dots for nesting: "level" or "http.status"
//   FILTER_VALUES  comma-separated values that match: "DEBUG,TRACE"
//   FILTER_ACTION  "drop" (default): drop matching records; "keep": keep only matching records
// A record that is not JSON is passed on unchanged.
const path = (process.env.FILTER_FIELD ?? '').split('.').filter(Boolean);
const values = new Set((process.env.FILTER_VALUES ?? '').split(',').map((v) => v.trim()).filter(Boolean));
const keepMatching = (process.env.FILTER_ACTION ?? 'drop') === 'keep';

function matches(document) {
  let node = document;
  for (const key of path) node = node?.[key];
  return node !== undefined && node !== null && values.has(String(node));
}

export const handler = async (event) => ({
  records: event.records.map((record) => {
    let document;
    try {
      document = JSON.parse(Buffer.from(record.data, 'base64').toString('utf8'));
    } catch {
      return { recordId: record.recordId, result: 'Ok', data: record.data };
    }
    const drop = matches(document) !== keepMatching;
    return { recordId: record.recordId, result: drop ? 'Dropped' : 'Ok', data: record.data };
  }),
});
