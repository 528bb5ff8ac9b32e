# syntax=docker/dockerfile:1
#
# One image per carenet service, chosen by the SERVICE build argument: the four gRPC services
# (identity, referral, careplan, outcomes; port 50051), the web front (web; HTTP on 8000)
# and the FHIR API (fhir; HTTP on 8001). Build from the repository root (the context holds
# requirements/, proto/, libs/ and services/):
#
#   docker build --build-arg SERVICE=identity -t localhost/carenet/identity:0.1.0 .
#
# The web front's CSS and fonts come from npm at build time only: `npm ci` installs exactly
# services/web/package-lock.json (each tarball checked against its sha512 integrity) in a
# Node stage, and services/web/vendor_assets.py copies them into the package's
# static/vendor before it is installed. The image needs no network when it runs.
#
# (`make images` builds all of them.) Third-party packages come only from
# requirements/runtime-lock.txt, every file checked against its sha256 (--require-hashes);
# the project's own packages are installed from the context without resolving anything.
#
# Base image: python:3.11.14-slim-bookworm, by tag. To pin its digest too, look it up with
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm` and build with
# --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> (the chart check
# reports while the default carries no digest). The same holds for NODE_IMAGE, the stage
# that fetches the web front's assets (nothing of it but those files reaches the image).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# ---- assets: the web front's pinned npm packages (used by SERVICE=web only) --------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /assets
COPY services/web/package.json services/web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# ---- build: a venv with the locked packages and the service ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY requirements/runtime-lock.txt requirements/runtime-lock.txt
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<identity|referral|careplan|outcomes|web|fhir>" >&2; exit 1; } \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime-lock.txt

COPY proto/ proto/
COPY libs/servicekit/ libs/servicekit/
COPY services/${SERVICE}/ services/${SERVICE}/
COPY --from=assets /assets/node_modules/ /assets/node_modules/

# The web front's static vendor assets into its package, before it is installed.
RUN if [ "${SERVICE}" = web ]; then \
      ln -s /assets/node_modules services/web/node_modules \
      && /opt/venv/bin/python services/web/vendor_assets.py \
      && test -s services/web/src/web/static/vendor/utrecht/index.css; \
    fi

# The project's packages on top, with build isolation off (setuptools comes from the lock)
# and no dependency resolution; pip check proves the lock covers everything they need.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation \
      ./proto ./libs/servicekit "./services/${SERVICE}" \
 && /opt/venv/bin/pip check \
 && ln -s "/opt/venv/bin/${SERVICE}" /opt/venv/bin/carenet-service

# ---- runtime: the venv only; no build tools, no pip cache, no sources -----------------------
FROM ${PYTHON_IMAGE}
ARG SERVICE

LABEL org.opencontainers.image.title="carenet-${SERVICE}" \
      org.opencontainers.image.description="carenet ${SERVICE} service" \
      org.opencontainers.image.source="https://github.com/carenet/carenet"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 carenet \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin carenet

COPY --from=build /opt/venv /opt/venv

WORKDIR /tmp
USER 10001:10001
# gRPC services listen on 50051, the web front on 8000, the FHIR API on 8001 (their
# <SVC>_PORT / <SVC>_GRPC_PORT settings).
EXPOSE 50051 8000 8001

ENTRYPOINT ["opentelemetry-instrument", "carenet-service"]
CMD ["serve"]
