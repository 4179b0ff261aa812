# firehose beside a stream source. Not built by this project's CI (its machines run no Docker
# engine); the same commands (npm ci, npm run build, npm prune) are what CI runs.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY destinations destinations
COPY transforms transforms
COPY bench bench
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
# Built-in transforms load from dist/transforms; config/ holds the examples.
COPY config config
USER node
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["run", "--config", "/etc/firehose/streams.yaml"]
