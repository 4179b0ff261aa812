/**
 * Why a record did not reach its destination: the one failure shape every stage reports, written
 * into the error output line or the dead letter as it is.
 */
export type ErrorOutputType =
  | 'processing-failed'
  | 'partitioning-failed'
  | 'format-conversion-failed'
  | 'http-endpoint-failed'
  | 'AmazonOpenSearchService-failed';

/** A Firehose-style error code (`Lambda.FunctionTimedOut`), a message naming what was wrong, and destination fields. */
export interface FailureReason {
  readonly code: string;
  readonly message: string;
  /** Destination-specific fields written into the record's error-output line (esDocumentId, esIndexName). */
  readonly details?: Readonly<Record<string, string>>;
}

/** A record's failure as it ends: the reason, the stage it failed in, after how many attempts, when. */
export interface Failure extends FailureReason {
  readonly errorOutputType: ErrorOutputType;
  readonly attemptsMade: number;
  /** When the last attempt ended, epoch ms. */
  readonly endedAt: number;
  /** The transform module (Firehose writes the Lambda function's ARN here). */
  readonly lambdaArn?: string;
}

/** Failures of these types happened before or in the transform: a redrive runs them through it again. */
export function failedBeforeTransform(type: ErrorOutputType | undefined, code: string): boolean {
  return type === 'processing-failed' || (type === undefined && code.startsWith('Lambda.'));
}
