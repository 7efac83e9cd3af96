# The hub: `hub run` with its store and registry in /var/lib/hub (a volume), serving HTTP on 8080 for the
# healthcheck, the API and /metrics. docker-compose.yml runs it next to Mosquitto, InfluxDB, Grafana and
# Prometheus; docs/operators/deployment.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/hub

# Dependencies first, read from pyproject.toml alone, so that a source change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY hub ./hub
COPY devices ./devices
COPY detectors ./detectors
COPY simulators ./simulators
# /var/lib/hub is the hub's volume: a new named volume takes this directory's owner.
RUN pip install --no-deps . \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/hub --no-create-home hub \
    && install -d -o hub -g hub -m 0750 /var/lib/hub

# A placeholder secret stops a production hub at start (hub/settings.py); development must be chosen.
ENV HUB_ENVIRONMENT=production \
    HUB_HTTP_HOST=0.0.0.0 \
    HUB_HTTP_PORT=8080 \
    HUB_REGISTRY_PATH=/var/lib/hub/registry.yaml \
    HUB_STORE_PATH=/var/lib/hub/hub.sqlite3

USER hub
WORKDIR /var/lib/hub
EXPOSE 8080

# Ready = connected to the broker, store writable, intake keeping up (hub/api/routes/health.py). urlopen
# raises on a 503, so the exit status says it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HUB_HTTP_PORT', '8080') + '/ready', timeout=4)"

# SIGTERM: the hub stops taking messages, commits and acknowledges what it took, then disconnects.
CMD ["hub", "run", "--no-view"]
