import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';

/** How to reach Redis, as the configuration's `redis` section says. */
export interface RedisSettings {
  readonly url: string;
  /** For `rediss://`: the CA that signed the server's certificate, a client certificate, and whether to check the server's. */
  readonly tls?: { readonly caFile?: string | undefined; readonly certFile?: string | undefined; readonly keyFile?: string | undefined; readonly rejectUnauthorized: boolean } | undefined;
}

/** TLS errors (a wrong CA, an expired or mismatched certificate) that no retry will mend. */
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|DEPTH_ZERO|HOSTNAME/;

/**
 * Every Redis connection of the service, the CLI and the DLQ: the same URL and TLS settings.
 * A TLS failure is logged at error level, once, with its cause (ioredis otherwise retries it
 * silently and every command fails with "max retries per request").
 */
export function redisConnection(settings: RedisSettings, options: RedisOptions, log?: Logger): Redis {
  const tls = settings.tls;
  const redis = new Redis(settings.url, {
    ...options,
    ...(tls
      ? {
          tls: {
            ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
            ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
            ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
            rejectUnauthorized: tls.rejectUnauthorized,
          },
        }
      : {}),
  });
  let reported = false;
  redis.on('error', (err: Error & { code?: string }) => {
    if (TLS_CODES.test(`${err.code ?? ''} ${err.message}`)) {
      if (!reported) log?.error('Redis TLS handshake failed; check redis.tls (caFile, certFile, keyFile) and the server certificate', { error: err });
      reported = true;
    } else log?.debug('redis connection error', { error: err });
  });
  return redis;
}
