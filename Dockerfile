# OpenPCC node: Diameter (3868), management API + console + /metrics (8080).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/openpcc
COPY . .
# Editable: the Alembic migrations/ and examples/ are read from this source tree at run time.
RUN pip install --no-cache-dir -e . \
    && useradd --system --home-dir /opt/openpcc openpcc \
    && mkdir -p var && chown openpcc var
USER openpcc

ENV OPENPCC_API_HOST=0.0.0.0
EXPOSE 3868 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["openpcc", "run"]
