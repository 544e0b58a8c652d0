# The production image: gunicorn for the web, the same image runs the Celery worker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml requirements.lock ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/reqs.txt
RUN pip install --no-cache-dir -c requirements.lock -r /tmp/reqs.txt

COPY . .
# OHIF's prebuilt viewer from the npm registry (make ohif), then npm goes again.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends npm \
    && python tools/ohif/install.py /app/var/ohif \
    && apt-get purge -y -qq npm && apt-get autoremove -y -qq \
    && rm -rf /var/lib/apt/lists/* /root/.npm
RUN DEBUG=0 SECRET_KEY=build-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    python manage.py collectstatic --no-input \
    && useradd --system --uid 1000 pacsshare \
    && mkdir -p /app/var && chown -R pacsshare /app/var
USER pacsshare

EXPOSE 8000
CMD ["gunicorn", "pacsshare.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--no-control-socket"]
