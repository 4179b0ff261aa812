import type { Failure } from './failure.js';
import { redact } from './secrets.js';
import type { SourceRecord } from './records.js';

/**
 * One JSON line of Firehose's error output, carrying the record's original bytes (base64) so they
 * can be replayed.
 */
export function errorOutputLine(record: SourceRecord, failure: Failure): Buffer {
  return Buffer.from(
    JSON.stringify({
      attemptsMade: failure.attemptsMade,
      arrivalTimestamp: record.approximateArrivalTimestamp,
      errorCode: failure.code,
      errorMessage: redact(failure.message), // an endpoint's answer may echo a credential
      attemptEndingTimestamp: failure.endedAt,
      rawData: record.data.toString('base64'),
      ...(failure.lambdaArn ? { lambdaArn: failure.lambdaArn } : {}),
      ...failure.details,
      ...(failure.errorOutputType === 'format-conversion-failed'
        ? { sequenceNumber: record.sequenceNumber, subSequenceNumber: record.subSequenceNumber }
        : {}),
    }) + '\n',
  );
}
