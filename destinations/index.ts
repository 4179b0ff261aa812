import type { DestinationPlugin } from '../src/destination.js';
import { httpEndpointPlugin } from './http/index.js';
import { openSearchPlugin } from './opensearch/index.js';
import { s3Plugin } from './s3/index.js';

/** Every destination, by the configuration key that selects it in a delivery stream. */
export const destinationPlugins: readonly DestinationPlugin<unknown>[] = [
  s3Plugin,
  httpEndpointPlugin as DestinationPlugin<unknown>,
  openSearchPlugin as DestinationPlugin<unknown>,
];
