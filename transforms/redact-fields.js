// redact-fields: mask JSON fields in every record — Firehose's dynamic data masking pattern.
// Configure like a Lambda function, with environment variables:
//   REDACT_FIELDS  comma-separated field paths, dots for nesting: "password,card.number,user.email"
//   REDACT_MASK    what replaces each value (default "****")
// A record that is not a JSON object is marked ProcessingFailed (it could not be masked), so it
// lands in the error output rather than being delivered unmasked.
const fields = (process.env.REDACT_FIELDS ?? '').split(',').map((f) => f.trim()).filter(Boolean).map((f) => f.split('.'));
const mask = process.env.REDACT_MASK ?? '****';

function redact(value, path) {
  let node = value;
  for (let i = 0; i < path.length - 1; i++) {
    node = node?.[path[i]];
    if (node === null || typeof node !== 'object') return;
  }
  const last = path[path.length - 1];
  if (node && Object.prototype.hasOwnProperty.call(node, last)) node[last] = mask;
}

export const handler = async (event) => ({
  records: event.records.map((record) => {
    const text = Buffer.from(record.data, 'base64').toString('utf8');
    let document;
    try {
      document = JSON.parse(text);
    } catch {
      return { recordId: record.recordId, result: 'ProcessingFailed', data: record.data };
    }
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      return { recordId: record.recordId, result: 'ProcessingFailed', data: record.data };
    }
    for (const path of fields) redact(document, path);
    const newline = text.endsWith('\n') ? '\n' : '';
    return { recordId: record.recordId, result: 'Ok', data: Buffer.from(JSON.stringify(document) + newline).toString('base64') };
  }),
});
