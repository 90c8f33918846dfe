# ID-document OCR verification service: CPU-only image, everything offline.
#
#   docker build -t idcard-ocr .
#   docker run --rm -p 8000:8000 -v ocr-data:/data idcard-ocr       # the service, embedded default
#   docker run --rm -v "$PWD/photos:/photos:ro" idcard-ocr ocr-service scan /photos/a.jpg --name 张三
#   docker run --rm idcard-ocr ocr-service models          # verify the OCR model files
#
# The OCR models (PP-OCRv6 small det/rec, direction classifier) come inside the rapidocr
# wheel; nothing is downloaded at run time, and the build fails if a model file is missing
# or does not match the sha256 in models/manifest.json.

# Debian bookworm: the release the developer and CI machines run, so apt package names match.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# System libraries. The opencv-python-headless, onnxruntime, numpy and Pillow wheels bundle
# their own libraries and need only libc, libstdc++, libgcc_s and zlib from the system, all
# of which the slim image already has (headless OpenCV needs no libGL / libglib2.0-0).
# - libgomp1: the GCC OpenMP runtime (~300 kB). The pinned wheels do not link it today (ldd),
#   but OpenMP builds of ONNX Runtime / OpenCV and the optional Paddle engine do; without it
#   such a wheel fails at import with "libgomp.so.1: cannot open shared object file".
# - fonts-wqy-zenhei, fonts-dejavu-core: the faces the sample generator (samples/) draws
#   cards with (CJK text and the monospaced ID-number digits).
# Versions are not pinned: Debian's point releases replace them with security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 fonts-wqy-zenhei fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 ocr \
    && useradd --system --uid 10001 --gid ocr --create-home --home-dir /home/ocr --shell /usr/sbin/nologin ocr

WORKDIR /app

# Dependencies first (all pinned in pyproject.toml), so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (.dockerignore keeps out .venv, data, benchmark output, .git, caches).
# Owned by root: the service user can read the code but not change it.
COPY . ./
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info \
    && ocr-service models

ENV OCR_DATA_DIR=/data
RUN mkdir -p /data && chown ocr:ocr /data
VOLUME ["/data"]

EXPOSE 8000
# The ocr user (10001:10001), by number so Kubernetes' runAsNonRoot can verify it is not root.
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# The embedded default: SQLite, encrypted blobs and the key file under /data, in-process scans.
# Distributed: set OCR_DATABASE_URL, OCR_BROKER_URL, OCR_ENCRYPTION_KEY and run
# `ocr-service worker --queues live` containers beside this one, and Redis with AOF
# (`redis-server --appendonly yes --appendfsync everysec`), so a Redis restart keeps the
# queued scans: docker-compose.yml runs the whole set that way.
CMD ["ocr-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
