// add-fields: enrich JSON records.
//   ADD_FIELDS                 a JSON object merged into every record: '{"env":"prod","team":"web"}'
//   ADD_INGEST_TIMESTAMP       a field name that receives the processing time (ISO-8601)
//   ADD_ARRIVAL_TIMESTAMP      a field name that receives the stream's arrival time (ISO-8601)
//   ADD_KINESIS_METADATA       a field name that receives {shardId, partitionKey, sequenceNumber}
// A record that is not a JSON object is marked ProcessingFailed.
const staticFields = JSON.parse(process.env.ADD_FIELDS || '{}');
const ingestField = process.env.ADD_INGEST_TIMESTAMP;
const arrivalField = process.env.ADD_ARRIVAL_TIMESTAMP;
const metadataField = process.env.ADD_KINESIS_METADATA;

export const handler = async (event) => {
  const now = new Date().toISOString();
  return {
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
      Object.assign(document, staticFields);
      if (ingestField) document[ingestField] = now;
      if (arrivalField) document[arrivalField] = new Date(record.approximateArrivalTimestamp).toISOString();
      if (metadataField && record.kinesisRecordMetadata) {
        const { shardId, partitionKey, sequenceNumber } = record.kinesisRecordMetadata;
        document[metadataField] = { shardId, partitionKey, sequenceNumber };
      }
      const newline = text.endsWith('\n') ? '\n' : '';
      return { recordId: record.recordId, result: 'Ok', data: Buffer.from(JSON.stringify(document) + newline).toString('base64') };
    }),
  };
};
