/** Counters of one delivery stream, named after Firehose's CloudWatch metrics where one exists. */
export interface DeliveryStreamStats {
  /** IncomingRecords / IncomingBytes: what its sources handed on. */
  recordsRead: number;
  bytesRead: number;
  /** DeliveryTo*.Records / .Bytes / .Success (objects or requests) */
  recordsDelivered: number;
  bytesDelivered: number;
  objectsDelivered: number;
  /** Failed delivery attempts (each is retried). */
  deliveryAttemptsFailed: number;
  /** Records written to the error output (processing-failed, partitioning-failed, …). */
  recordsToErrorOutput: number;
  /** Records a transform dropped on purpose: counted, not delivered. */
  recordsDropped: number;
  /** Times a new partition had to wait for an open one to be sealed early (PartitionCountExceeded). */
  partitionCountExceeded: number;
  /** Records parked in the dead-letter queue. */
  recordsToDeadLetterQueue: number;
  /** Copies of parked records written to the backup bucket (BackupToS3.Records). */
  backupCopies: number;
  /**
   * Records whose positions stay held after an encoding failure or an unexpected error: they
   * reached no end in this run and are read again after a restart.
   */
  recordsHeld: number;
  /** SucceedConversion.Records / .Bytes: records the Parquet conversion took. */
  succeededConversionRecords: number;
  succeededConversionBytes: number;
  /** FailedConversion.Records / .Bytes: records it could not convert (they go to the error output). */
  failedConversionRecords: number;
  failedConversionBytes: number;
  /** Source record backup (S3BackupMode Enabled): records copied as read, and those written to the backup bucket (BackupToS3.Records / .Bytes). */
  sourceBackupRecords: number;
  sourceBackupRecordsWritten: number;
  sourceBackupBytesWritten: number;
  /** Buffers sealed early because readers were waiting for budget (flush reason backpressure). */
  backpressureSeals: number;
  /** Exactly-once: objects found already written (an earlier attempt or owner) and adopted. */
  objectsAdopted: number;
  /** Exactly-once: batches re-formed from an intent an earlier attempt recorded. */
  batchesReformed: number;
  /** Exactly-once: batches not written or not committed because their lease had moved (the new owner writes them). */
  batchesFenced: number;
  /** Exactly-once: re-formations under another configuration than their intent's (exactly-once may not hold for those). */
  reformedUnderOtherConfig: number;
}

export function emptyStats(): DeliveryStreamStats {
  return {
    recordsRead: 0,
    bytesRead: 0,
    recordsDelivered: 0,
    bytesDelivered: 0,
    objectsDelivered: 0,
    deliveryAttemptsFailed: 0,
    recordsToErrorOutput: 0,
    recordsDropped: 0,
    objectsAdopted: 0,
    batchesReformed: 0,
    batchesFenced: 0,
    reformedUnderOtherConfig: 0,
    partitionCountExceeded: 0,
    recordsToDeadLetterQueue: 0,
    backupCopies: 0,
    recordsHeld: 0,
    backpressureSeals: 0,
    sourceBackupRecords: 0,
    sourceBackupRecordsWritten: 0,
    sourceBackupBytesWritten: 0,
    succeededConversionRecords: 0,
    succeededConversionBytes: 0,
    failedConversionRecords: 0,
    failedConversionBytes: 0,
  };
}
