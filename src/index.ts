/**
 * The library: what `firehose` does from the command line, callable from TypeScript.
 *
 *   import { loadConfig, replay } from 'firehose';
 *   const config = await loadConfig('streams.yaml');
 *   const result = await replay(config, { from: 's3://archive/clicks/', start: '2026-12-01T10:00:00Z', end: '2026-12-01T11:00:00Z', to: 'clicks-search' });
 */
export { loadConfig, parseConfig, ConfigError, type ServiceConfig, type DeliveryStreamConfig } from './config.js';
export { replay, ReplayError, type ReplayOptions, type ReplayResult, type ReplayReport, type Framing } from './replay/replay.js';
export { redrive, type RedriveOptions, type RedriveResult } from './redrive.js';
export { startService, type RunningService, type ServiceOptions, type ReloadResult } from './service.js';
export { createLogger, silentLogger, type Logger } from './log.js';
export { decodeManifest, manifestEntries, manifestKey, type Manifest, type ManifestEntry } from './archive/manifest.js';
