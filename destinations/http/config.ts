import { z } from 'zod';
import { httpUrl, intIn, oneOf, text } from '../../src/schema.js';
import { processingConfigurationSchema } from '../../src/transform/config.js';
import { s3DestinationSchema } from '../s3/config.js';

/** CloudFormation writes common attributes as [{attributeName, attributeValue}]; a plain map works too. */
const commonAttributes = z
  .union([
    z.array(z.strictObject({ attributeName: z.string().min(1).max(256), attributeValue: z.string().max(1024) })),
    z.record(z.string().min(1).max(256), z.string().max(1024)),
  ], { error: 'must be a map of names to strings or a list of {attributeName, attributeValue}' })
  .transform((value) => (Array.isArray(value) ? Object.fromEntries(value.map((a) => [a.attributeName, a.attributeValue])) : value))
  .refine((value) => Object.keys(value).length <= 50, { message: 'at most 50 common attributes' });

export const httpEndpointDestinationSchema = z.strictObject({
  endpointConfiguration: z.strictObject({
    url: httpUrl,
    name: text('a name for the endpoint').optional(),
    /** Sent verbatim as X-Amz-Firehose-Access-Key. */
    accessKey: z.string().max(4096, { message: 'must be at most 4096 characters' }).optional(),
  }),
  requestConfiguration: z
    .strictObject({
      contentEncoding: oneOf(['NONE', 'GZIP'] as const).default('NONE'),
      commonAttributes: commonAttributes.optional(),
    })
    .default({ contentEncoding: 'NONE' }),
  bufferingHints: z
    .strictObject({ sizeInMBs: intIn(1, 64).default(5), intervalInSeconds: intIn(60, 900).default(300) })
    .default({ sizeInMBs: 5, intervalInSeconds: 300 }),
  retryOptions: z.strictObject({ durationInSeconds: intIn(0, 7200).default(300) }).default({ durationInSeconds: 300 }),
  s3BackupMode: oneOf(['FailedDataOnly', 'AllData'] as const)
    .default('FailedDataOnly')
    .refine((mode) => mode === 'FailedDataOnly', { message: 'AllData is not supported yet: use FailedDataOnly (failed records go to s3Configuration)' }),
  /** Where records that could not be delivered go (the error output), as in Firehose. */
  s3Configuration: s3DestinationSchema,
  processingConfiguration: processingConfigurationSchema.optional(),
});

export type HttpEndpointDestinationConfig = z.output<typeof httpEndpointDestinationSchema>;
