# streamline worker: slim, non-root. Build: docker build -t streamline .
# Run against a cluster: docker run -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 6066:6066 streamline
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
# Runtime dependencies only: no embedded broker, no test tools.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-compile . && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin streamline \
    && mkdir -p /var/lib/streamline && chown streamline /var/lib/streamline
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/var/lib/streamline \
    WEB_BIND=0.0.0.0 \
    WEB_PORT=6066
USER streamline
WORKDIR /home/streamline
VOLUME ["/var/lib/streamline"]
EXPOSE 6066
# Liveness: the process answers. Readiness (assigned, recovered, no stalled agent) is GET /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WEB_PORT', '6066'), timeout=2)"
# The worker stops gracefully on SIGTERM (docker stop).
ENTRYPOINT ["python", "-m", "worker"]
