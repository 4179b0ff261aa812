import type { SourceRecord } from './records.js';

/** Why a record went to the error output, as Firehose writes it there. */
export interface Failure {
  readonly errorOutputType: 'processing-failed' | 'partitioning-failed' | 'format-conversion-failed' | 'http-endpoint-failed' | 'AmazonOpenSearchService-failed';
  readonly errorCode: string;
  readonly errorMessage: string;
  readonly attemptsMade: number;
  readonly attemptEndingTimestamp: number;
  /** The transform module (Firehose writes the Lambda function's ARN here). */
  readonly lambdaArn?: string;
  /** Destination-specific fields (esDocumentId, esIndexName). */
  readonly details?: Readonly<Record<string, string>>;
}

/**
 * One JSON line of Firehose's error output, carrying the record's original bytes (base64) so they
 * can be replayed.
 */
export function errorOutputLine(record: SourceRecord, failure: Failure): Buffer {
  return Buffer.from(
    JSON.stringify({
      attemptsMade: failure.attemptsMade,
      arrivalTimestamp: record.approximateArrivalTimestamp,
      errorCode: failure.errorCode,
      errorMessage: failure.errorMessage,
      attemptEndingTimestamp: failure.attemptEndingTimestamp,
      rawData: record.data.toString('base64'),
      ...(failure.lambdaArn ? { lambdaArn: failure.lambdaArn } : {}),
      ...failure.details,
      ...(failure.errorOutputType === 'format-conversion-failed'
        ? { sequenceNumber: record.sequenceNumber, subSequenceNumber: record.subSequenceNumber }
        : {}),
    }) + '\n',
  );
}
