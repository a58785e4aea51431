# Rhea with CUDA: training, export (TorchScript and AOTInductor) and the C++ interface.
#
#   docker build -t rhea .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" rhea run --device cuda
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" rhea export run1
#
# The devel flavour of the CUDA image is deliberate: AOTInductor compiles C++ against the
# CUDA headers when it packages a model for the GPU, and cpp_interface/ builds against
# libtorch here. See docs/export.md.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
FROM ${CUDA_IMAGE}

# torch is pinned as in the Makefile; the index picks the CUDA build of the wheel.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/rhea/.venv \
    PATH=/opt/rhea/.venv/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev g++ cmake make git tmux ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rhea
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install --upgrade pip \
 && pip install "$TORCH_SPEC" --index-url "$TORCH_INDEX"

# Dependencies first (cached while only the sources change), then Rhea itself.
COPY pyproject.toml README.md ./
COPY rhea_engine rhea_engine
COPY rhea_tui rhea_tui
RUN pip install ".[plot,equivariant]"

# The C++ interface, built against the libtorch inside the installed torch wheel.
COPY cpp_interface cpp_interface
COPY tests/cpp/make_parity_data.py tests/cpp/make_parity_data.py
RUN cmake -S cpp_interface -B cpp_interface/build -DCMAKE_BUILD_TYPE=Release \
      -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" \
 && cmake --build cpp_interface/build -j "$(nproc)"
ENV PATH=/opt/rhea/cpp_interface/build:$PATH

# Runs, runs.db and exports live in the mounted working directory. The caches of the
# compilers go to /tmp, so that the image also runs as an unnamed user (docker run --user).
WORKDIR /work
ENV RHEA_HOME=/work \
    USER=rhea \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    TRITON_CACHE_DIR=/tmp/triton
ENTRYPOINT ["rhea"]
CMD ["--help"]
