# The triage worker: slim, non-root. Build: docker build -t triage .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY triage ./triage
RUN pip install --no-compile . && useradd --create-home --uid 10001 triage
COPY config ./config

USER triage
# A Kafka broker and a store must be configured, e.g.
#   TRIAGE_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 TRIAGE_DATABASE_URL=postgresql+psycopg://...
CMD ["triage", "run"]
