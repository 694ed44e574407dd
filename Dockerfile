# The inbox as it runs in production: daphne behind WhiteNoise, settings from the environment.
# Layers go from the least to the most often changed, so a code change rebuilds only the last.

# --- The stylesheet: Tailwind, built by its own npm project in theme/static_src. -------------
FROM node:22-slim AS css
WORKDIR /src/theme/static_src
COPY theme/static_src/package.json theme/static_src/package-lock.json ./
RUN npm ci --no-audit --no-fund
# Tailwind scans the templates and Python code for the class names it must keep.
COPY . /src
RUN npm run build

# --- The locked dependencies, in a virtualenv copied whole into the final image. -----------
FROM python:3.11-slim AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
# --require-hashes: exactly the pinned files, or the build fails.
RUN /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock

# --- The image. ---------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DEBUG=false \
    PORT=8000
# The group first, by number: useradd --user-group would give it the next system GID (999).
RUN groupadd --system --gid 10001 inbox \
    && useradd --system --no-log-init --no-create-home --uid 10001 --gid 10001 inbox
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY . .
COPY --from=css /src/theme/static/css/dist/styles.css theme/static/css/dist/styles.css
# Hashed, pre-compressed static files, written as root so the server cannot change them.
RUN python manage.py collectstatic --noinput
# Numeric, so that an orchestrator can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/bin/healthcheck"]
CMD ["/app/bin/start"]
