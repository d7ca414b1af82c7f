# The writer service (ECS Fargate). Built by `cdk deploy` from the repository root for the task's
# CPU (linux/arm64); it cannot be built on the development machine this project was made on (no
# Docker engine there). test/writer-bundle.test.ts starts the same bundle against the emulators.
FROM public.ecr.aws/docker/library/node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY lib ./lib
COPY functions ./functions
COPY infra/build-writer.mjs ./infra/
# Compiled JavaScript: the writer and its Parquet worker bundled, parquet-wasm's .wasm beside
# them. Nothing is compiled at start-up and no node_modules ship.
RUN node infra/build-writer.mjs /app/dist/writer

FROM public.ecr.aws/docker/library/node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# Buffers of 128 KiB and more straight from mmap, so memory a flush or compaction frees goes
# back to the system (glibc's adaptive threshold otherwise keeps it in its arenas: measured
# peak RSS 1.9-2.2x the memory budget under overload, 1.2x with this).
ENV MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /app/dist/writer ./
# Index runs spill to local disk (the task's ephemeral storage).
RUN mkdir -p /tmp && chown node:node /tmp
USER node
EXPOSE 8081
# Liveness only (a damaged table is reported by GET /health, not fixed by a restart).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains: every table is flushed and committed before the process exits.
STOPSIGNAL SIGTERM
# A 64 MB young generation: the write path allocates fast, and scavenges cost less (≈15 % more
# append throughput in bench/).
CMD ["node", "--max-semi-space-size=64", "--enable-source-maps", "writer-main.js"]
