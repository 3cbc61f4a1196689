# Pairsmith production image: gunicorn serves the app (whitenoise serves the static files);
# the same image runs the celery worker (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PAIRSMITH_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    EXPORT_ROOT=/data/exports

WORKDIR /app

# A writable home: gunicorn puts its control socket in ~/.gunicorn/ (and warns when it cannot).
RUN groupadd --system --gid 10001 pairsmith \
 && useradd --system --uid 10001 --gid pairsmith --create-home --home-dir /home/pairsmith \
    --shell /usr/sbin/nologin pairsmith

# Dependencies first, so a code change does not reinstall them. Every package ships a wheel (psycopg-binary).
COPY requirements/base.lock requirements/base.lock
RUN pip install -r requirements/base.lock

COPY . .

# Static files are collected (and compressed/hashed by whitenoise) at build time with production settings;
# the key is a throwaway that only satisfies the settings' check (>= 50 chars), never used at run time.
# /data/exports is created owned by the app user so that a named volume mounted there starts writable.
RUN DEBUG=0 SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime-0123456789abcdef \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var /data/exports \
 && chown -R pairsmith:pairsmith /app/var /data

# Numeric, so that runtimes enforcing runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "pairsmith.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
