# Séjour production image: gunicorn (web) and Celery (worker, beat) share it.
# Built by docker-compose.yml; configuration comes from the environment (.env, see .env.example).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.settings \
    DEBUG=0 \
    SEJOUR_VAR_DIR=/var/lib/sejour \
    STATIC_ROOT=/app/staticfiles \
    STATIC_MANIFEST=1

# WeasyPrint (PDF invoices) needs Pango, HarfBuzz's subsetter and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 1000 sejour \
    && useradd --system --uid 1000 --gid sejour --home-dir /app --no-create-home sejour \
    && mkdir -p /app /var/lib/sejour \
    && chown sejour:sejour /var/lib/sejour

WORKDIR /app

# Dependencies first (cached until pyproject.toml changes): `pip install .` of the project
# metadata alone installs every pinned dependency; the code itself runs from /app (PYTHONPATH),
# where Django finds the templates and static files next to the modules.
COPY pyproject.toml ./
RUN touch README.md \
    && pip install . \
    && pip uninstall -y sejour \
    && rm -rf build README.md ./*.egg-info

COPY --chown=root:root . .

# Static files with hashed names (whitenoise serves them), then hand the data folder to the app user.
# DEBUG=1 for this build step only: the real secrets come at run time (DEBUG=0 refuses to start without).
RUN DEBUG=1 python manage.py collectstatic --noinput -v0 \
    && chown -R sejour:sejour /var/lib/sejour

USER sejour
VOLUME ["/var/lib/sejour"]
EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120", \
     "--access-logfile", "-"]
