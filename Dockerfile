# pyWATS events as a container: slim Python, the `all` extra and `otlp` (OpenTelemetry with the OTLP/HTTP
# exporter: off until OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT are set; installed but off,
# it costs nothing), running as an unprivileged user.
#   docker build -t pywats-events .
#   docker run --rm -p 8080:8080 -v $PWD/plant.toml:/etc/pywats-events/pywats-events.toml:ro pywats-events
# The store (SQLite by default) lives in the volume /var/lib/pywats-events; use PostgreSQL for several
# replicas (db = "postgresql://..."). Secrets come from the environment, never from the image.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/pywats-events
COPY . /tmp/src
RUN pip install "/tmp/src[all,otlp]" \
 && rm -rf /tmp/src \
 && useradd --system --uid 10001 --home-dir /var/lib/pywats-events --create-home pywats \
 && mkdir -p /etc/pywats-events \
 && chown pywats /var/lib/pywats-events

USER pywats
WORKDIR /var/lib/pywats-events
VOLUME ["/var/lib/pywats-events"]
EXPOSE 8080
# The HTTP server must listen beyond loopback inside a container; protect the intake with tokens.
ENV PYWATS_HTTP_HOST=0.0.0.0
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
# SIGTERM drains (bus.drain_timeout) before exit; give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pywats-events", "run"]
CMD ["--config", "/etc/pywats-events/pywats-events.toml"]
