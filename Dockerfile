# Tributary container image: `docker build -t tributary .`
# Run: docker run --rm -v $PWD/shop.yaml:/etc/tributary/tributary.yaml -v tributary-state:/var/lib/tributary tributary
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY .ci/fix-lockfile.py .ci/
COPY bin ./bin
COPY src ./src
COPY connectors ./connectors
COPY sinks ./sinks
COPY test ./test
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY package.json ./
RUN ln -s /app/bin/tributary.js /usr/local/bin/tributary && mkdir -p /var/lib/tributary /etc/tributary && chown node:node /var/lib/tributary
USER node
# Checkpoints and dead-letter files: mount a volume here and point state.dir at it.
VOLUME ["/var/lib/tributary"]
EXPOSE 8083
HEALTHCHECK CMD node -e "fetch('http://127.0.0.1:8083/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tributary"]
CMD ["run", "--config", "/etc/tributary/tributary.yaml"]
