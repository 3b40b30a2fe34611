# syntax=docker/dockerfile:1
# The image: a build stage with every dependency builds dist/ (scripts/build.ts: tsc, then the entry bundled); the
# runtime stage is the production install (package.json, package-lock.json, dist/, then `npm ci --omit=dev`) on
# Node 24, run as a non-root user.
# No secret is built in: DATABASE_URL, DATABASE_DIRECT_URL and JWT_SECRET come from the environment at run time.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json mikro-orm.config.ts ./
COPY scripts/build.ts ./scripts/
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
# V8's heap: a young generation of 2 x 32 MB semi-spaces (Node 24 sizes them from the machine's memory, 64 MB
# each on a large host) and the old generation capped at 384 MB (3/4 of the manifests' memory limit). Under 200
# clients this keeps the process near 210 MB of RSS at full throughput; the manifests set the same value. Why:
# docs/performance.md, "Heap settings in NODE_OPTIONS".
ENV NODE_OPTIONS="--max-old-space-size=384 --max-semi-space-size=32"
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    npm_config_cache=/tmp/.npm \
    npm_config_update_notifier=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
# The files stay root's and read-only: the server writes nothing but its logs (stdout) and /tmp.
USER 10001:10001
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: node is PID 1 and receives SIGTERM itself (npm would not pass it on), then drains and exits 0.
# The migration step runs from the same image: `npm run db:migrate` with DATABASE_URL set to the direct URL.
CMD ["node", "dist/src/main.js"]
