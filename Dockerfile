# syntax=docker/dockerfile:1.7
# One image for every process of the marketplace; the container's command
# chooses which: `marketplace-service <name>`, `marketplace-relay` or
# `marketplace-events <command>`. The gateway serves the web app, built in its
# own stage, from WEB_DIST.

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/marketplace
ENV PATH=/opt/marketplace/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY gateway ./gateway
RUN pip install . && python -m compileall -q /opt/marketplace
# The API's document, which the web app's typed client is generated from.
RUN python -m gateway.openapi > /src/openapi.json

# The web app (web/), built against that document: an API it no longer fits
# fails this stage, as it fails `make web`.
FROM node:20.19-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web ./
COPY --from=build /src/openapi.json ./openapi.json
RUN npm run --silent build

FROM python:3.11.7-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 marketplace \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin marketplace
COPY --from=build /opt/marketplace /opt/marketplace
COPY --from=web /web/dist /opt/marketplace/web
ENV PATH=/opt/marketplace/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    LOG_FORMAT=json \
    VAR_DIR=/tmp/marketplace \
    HEALTH_ADDRESS=0.0.0.0:8080 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    WEB_DIST=/opt/marketplace/web
USER 10001:10001
EXPOSE 8000 8080
CMD ["marketplace-service", "gateway"]
