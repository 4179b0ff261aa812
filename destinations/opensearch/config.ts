import { existsSync } from 'node:fs';
import { z } from 'zod';
import { flag, httpUrl, intIn, matching, oneOf, text } from '../../src/schema.js';
import { processingConfigurationSchema } from '../../src/transform/config.js';
import { s3DestinationSchema } from '../s3/config.js';

export const openSearchDestinationSchema = z
  .strictObject({
    /** The cluster's URL (https://…:9200). */
    clusterEndpoint: httpUrl.optional(),
    domainARN: z.unknown().optional(),
    indexName: matching(/^[a-z0-9][a-z0-9._+-]{0,79}$/, 'an index name (lowercase; 1–80 of a-z 0-9 . _ + -)'),
    /** Accepted for compatibility; OpenSearch has no mapping types. */
    typeName: z.string().optional(),
    indexRotationPeriod: oneOf(['NoRotation', 'OneHour', 'OneDay', 'OneWeek', 'OneMonth'] as const).default('OneDay'),
    bufferingHints: z
      .strictObject({ sizeInMBs: intIn(1, 100).default(5), intervalInSeconds: intIn(60, 900).default(300) })
      .default({ sizeInMBs: 5, intervalInSeconds: 300 }),
    retryOptions: z.strictObject({ durationInSeconds: intIn(0, 7200).default(300) }).default({ durationInSeconds: 300 }),
    s3BackupMode: oneOf(['FailedDocumentsOnly', 'AllDocuments'] as const)
      .default('FailedDocumentsOnly')
      .refine((m) => m === 'FailedDocumentsOnly', { message: 'AllDocuments is not supported yet: use FailedDocumentsOnly (failed documents go to s3Configuration)' }),
    s3Configuration: s3DestinationSchema,
    processingConfiguration: processingConfigurationSchema.optional(),
    documentIdOptions: z
      .strictObject({ defaultDocumentIdFormat: oneOf(['FIREHOSE_DEFAULT', 'NO_DOCUMENT_ID'] as const).default('FIREHOSE_DEFAULT') })
      .default({ defaultDocumentIdFormat: 'FIREHOSE_DEFAULT' }),
    basicAuth: z.strictObject({ username: text('a user name'), password: z.string() }).optional(),
    tls: z
      .strictObject({
        rejectUnauthorized: flag().default(true),
        caFile: text('a path to a PEM file')
          .refine((path) => existsSync(path), { message: 'no such file (a PEM file with the CA that signed the cluster\'s certificate)' })
          .optional(),
      })
      .optional(),
  })
  .superRefine((value, ctx) => {
    if (value.domainARN !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['domainARN'], message: 'give clusterEndpoint (the cluster URL) instead: domains are not looked up from here' });
    } else if (!value.clusterEndpoint) {
      ctx.addIssue({ code: 'custom', path: ['clusterEndpoint'], message: 'is required (the cluster URL, e.g. https://search.example.com:9200)' });
    }
  });

export type OpenSearchDestinationConfig = z.output<typeof openSearchDestinationSchema>;
