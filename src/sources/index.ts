import type { SourcePlugin } from '../source.js';
import { kinesisSourcePlugin } from './kinesis/index.js';

/** Every configurable source, by the configuration key that selects it in a delivery stream. */
export const sourcePlugins: readonly SourcePlugin<unknown>[] = [kinesisSourcePlugin as SourcePlugin<unknown>];
