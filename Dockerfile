# One image for the code-location server, the webserver and the daemon.
FROM python:3.12-slim

RUN pip install --no-cache-dir uv

WORKDIR /opt/dagster/app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project

COPY streams_t100 ./streams_t100
COPY workspace.yaml ./
RUN uv sync --locked --no-dev

ENV DAGSTER_HOME=/opt/dagster/dagster_home \
    PATH=/opt/dagster/app/.venv/bin:$PATH
COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
