# locust-operator controller image.
#   docker build -t ghcr.io/locust-operator/locust-operator:0.1.0 .
# The chart runs it as `locust-operator run --config ... (--namespace N | --all-namespaces)`.
#
# BASE_IMAGE: any image with python3 >= 3.11 and its venv module, e.g. the
# public python:3.11-slim (the default) or the Debian base `scripts/images`
# builds here (`--build-arg BASE_IMAGE=locust-operator.local/base:bookworm`).
# The package goes into a venv, so the same steps work on either (Debian's
# own python3 refuses `pip install` into the system, PEP 668).
ARG BASE_IMAGE=python:3.11-slim

# --- build: a wheel of this repo only (runtime deps are resolved below) ---
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The wheel bundles templates/ and the chart's CRD (pyproject force-include).
COPY pyproject.toml README.md ./
COPY controller ./controller
COPY templates ./templates
COPY charts/locust-operator/crds ./charts/locust-operator/crds
RUN python3 -m venv /tmp/build-venv \
 && /tmp/build-venv/bin/pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the wheel plus its runtime dependencies, no build or test tools ---
FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PATH=/opt/locust-operator/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/locust-operator \
 && /opt/locust-operator/bin/pip install /wheels/*.whl \
 && rm -rf /wheels \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
USER 65532:65532
# 8080: liveness (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["locust-operator"]
CMD ["run", "--all-namespaces"]
