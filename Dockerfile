# firehose beside a stream source: config/docker-compose.yml runs it with a stream source, an
# S3-compatible store and Redis. Not built by this project's CI (its machines run no Docker engine);
# test/compose.test.ts checks this file and the compose file, and CI runs the same npm steps.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY destinations destinations
COPY transforms transforms
COPY bench bench
# The benchmark and the chaos run are for this repository, not for the image; so are dev dependencies.
RUN npm run build && rm -rf dist/bench dist/chaos && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
# glibc raises its mmap threshold to the size of each large buffer freed (up to 32 MiB), and from
# then on keeps buffers below it in its heap, resident after they are freed. Fixed at 128 KiB,
# larger buffers go back to the system when freed: the read-path benchmark peaked at 157–188 MiB
# above idle with it, 195–216 without.
ENV NODE_ENV=production MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
# Built-in transforms load from dist/transforms; config/ holds the examples.
COPY config config
# Not root: the service needs no privilege (the admin port is above 1024).
USER node
# firehose handles SIGTERM (flush, deliver, checkpoint, hand leases back) and SIGHUP (reload).
STOPSIGNAL SIGTERM
# Ready: Redis, the source and every destination answer (GET /readyz needs no token). A config
# without runtime.admin.enabled has no endpoint: override or disable this healthcheck then.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.FIREHOSE_ADMIN_PORT || 8088) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["run", "--config", "/etc/firehose/streams.yaml"]
