# syntax=docker/dockerfile:1
#
# spmon container image.
#
#   docker build -t spmon:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --read-only --tmpfs /tmp -v spmon-data:/var/lib/spmon \
#       -v "$PWD/spmon.yaml:/etc/spmon/config.yaml:ro" -p 127.0.0.1:10317:10317 \
#       spmon:0.1.0 run --config /etc/spmon/config.yaml
#
# Dependencies come only from requirements.lock and deploy/docker/build-requirements.lock
# (hash-checked); deploy/docker/install.sh holds the install steps so that
# tests/deploy/test_image_steps.py can replay them without a Docker engine.
# Pin the base image by digest in your registry mirror if you need bit-for-bit rebuilds.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/spmon
WORKDIR /src
COPY requirements.lock ./
COPY deploy/docker/ ./deploy/docker/
RUN sh deploy/docker/install.sh deps . "$VIRTUAL_ENV"
COPY pyproject.toml README.md ./
COPY monitor/ ./monitor/
RUN sh deploy/docker/install.sh app . "$VIRTUAL_ENV"

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="spmon" \
      org.opencontainers.image.description="Watches SmarterProctoring exam sessions: Prometheus metrics and webhook alerts on status changes and overdue reviews" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A fixed numeric UID/GID so that Kubernetes' runAsNonRoot can verify it and volume
# ownership (fsGroup) is predictable. The state directory is the only place spmon writes
# besides /tmp; with a read-only root filesystem both must be mounts.
RUN groupadd --system --gid 10001 spmon \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin spmon \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/spmon

# Bytecode was compiled by pip in the build stage; never write it at run time.
COPY --from=build /opt/spmon /opt/spmon

ENV PATH=/opt/spmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    SPMON_HTTP__LISTEN=0.0.0.0:10317 \
    SPMON_STATE__PATH=/var/lib/spmon/spmon.db \
    SPMON_LOG__FORMAT=json

USER 10001:10001
WORKDIR /var/lib/spmon
VOLUME ["/var/lib/spmon"]
EXPOSE 10317
# spmon drains on SIGTERM within ~25 s; give `docker stop` enough time: --time 30.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["spmon", "healthcheck"]
# Exec form: spmon is PID 1 and receives SIGTERM itself (it installs its own handlers).
ENTRYPOINT ["spmon"]
CMD ["run"]
