# Tributary container image. Build from the repository root: `docker build -t tributary .`
# Run: docker run --rm -v $PWD/shop.yaml:/etc/tributary/tributary.yaml:ro -v tributary-state:/var/lib/tributary tributary
# (deploy/compose.yaml runs it beside Postgres, Redis, Prometheus and Grafana.)

# 1. Compile. Only tsc and the type packages are needed: no install scripts, no native builds,
#    and only the code that ships (tsconfig.build.json leaves test/ and bench/ out).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
COPY connectors ./connectors
COPY sinks ./sinks
RUN npx tsc -p tsconfig.build.json

# 2. Production dependencies only (native ones built for this base image). `prepare` compiles
#    a git checkout with the dev tools; the image takes dist/ from the build stage instead.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm pkg delete scripts.prepare && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. The image: node, production node_modules, dist/, the console's built files, the launcher. Runs as the unprivileged
#    `node` user (uid 1000) of the base image.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The web console, built and committed (console/dist): served at / with no build step.
COPY console/dist ./console/dist
COPY bin ./bin
COPY package.json ./
RUN ln -s /app/bin/tributary.js /usr/local/bin/tributary \
 && mkdir -p /var/lib/tributary /etc/tributary \
 && chown node:node /var/lib/tributary
USER node
# Checkpoints, the log and dead letters: mount a volume here and point state.dir at it.
VOLUME ["/var/lib/tributary"]
EXPOSE 8083
# /healthz answers as soon as the process runs (before the database is reached); set
# TRIBUTARY_HTTP_PORT when http.port is not 8083.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TRIBUTARY_HTTP_PORT||8083)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tributary"]
CMD ["run", "--config", "/etc/tributary/tributary.yaml"]
