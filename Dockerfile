# One image for every process: web (the default command), worker and beat (docker-compose.yml
# passes their commands). The builder stage installs the dependencies into a virtualenv and
# collects the static files; the runtime stage keeps only those, the code and a non-root user.
ARG PYTHON_IMAGE=python:3.11.16-slim-trixie

FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

WORKDIR /app
COPY . .
# Settings refuse DJANGO_DEBUG=0 without a secret key. This one exists only for this command
# in this stage, so it is in neither the runtime image's environment nor its history.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only GENVAULT_VAR_DIR=/app/var \
    python manage.py collectstatic --noinput


FROM ${PYTHON_IMAGE} AS runtime

# The worker's local provider speaks with espeak-ng (without it, speech is a synthetic buzz).
# PyAV, Pillow and psycopg bring their own libraries in their wheels.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system genvault \
    && useradd --system --gid genvault --home-dir /app --no-create-home genvault

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    GENVAULT_VAR_DIR=/app/var \
    DJANGO_DEBUG=0

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY . .
# The collected files stay root's (read-only to the app); var/ itself is the app's, for the
# beat schedule and, without DATABASE_URL or a bucket, the SQLite file, broker and media.
COPY --from=builder /app/var/static /app/var/static
RUN chown genvault:genvault /app/var
USER genvault

EXPOSE 8000
# Answers 200 only while the database, the broker and the media storage answer. The worker
# and beat serve no HTTP: docker-compose.yml gives them their own check or none.
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
