# The writer service (ECS Fargate). Built by `cdk deploy` from the repository root; it cannot be
# built on the development machine this project was made on (no Docker engine there).
FROM public.ecr.aws/docker/library/node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (tsx runs the TypeScript sources; parquet-wasm ships its wasm).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM public.ecr.aws/docker/library/node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# Buffers of 128 KiB and more straight from mmap, so memory a flush or compaction frees goes
# back to the system (glibc's adaptive threshold otherwise keeps it in its arenas: measured
# peak RSS 1.9-2.2x the memory budget under overload, 1.2x with this).
ENV MALLOC_MMAP_THRESHOLD_=131072
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY lib ./lib
COPY functions ./functions
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
CMD ["node", "--max-semi-space-size=64", "--import", "tsx", "lib/aws/writer-main.ts"]
