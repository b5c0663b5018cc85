# One image for both controllers; the command picks the process:
#   kubernaut-orchestrator (default) or kubernaut-executor.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/kubernaut
COPY pyproject.toml constraints.txt README.md ./
COPY shared ./shared
COPY orchestrator ./orchestrator
COPY executor ./executor
# Every dependency ships manylinux wheels, so no compiler is needed even here.
RUN /opt/kubernaut/bin/pip install --prefer-binary -c constraints.txt . \
    && /opt/kubernaut/bin/python -m compileall -q /opt/kubernaut/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kubernaut-controlplane" \
      org.opencontainers.image.description="Kubernaut orchestrator and executor"
# Bytecode was compiled in the build stage; nothing is written at run time, so a read-only root works.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/kubernaut/bin:$PATH
COPY --from=build /opt/kubernaut /opt/kubernaut
USER 65532:65532
EXPOSE 9090 8081
ENTRYPOINT []
CMD ["kubernaut-orchestrator"]
