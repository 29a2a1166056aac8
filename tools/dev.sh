#!/usr/bin/env bash
# The README's two commands.
#   tools/dev.sh build   install the Debian packages, build, run an example rnn_step
#   tools/dev.sh test    install what is missing, build, run every test, C++ (GPU tests skip
#                        without a GPU) and Python (the package installed into a venv)
# BUILD_DIR (default build) and JOBS (default: cores) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
PACKAGES=(cmake g++ libsqlite3-dev libspdlog-dev libfmt-dev catch2 libcli11-dev nlohmann-json3-dev)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
    echo "error: the CUDA Toolkit (NVRTC and headers) is needed at /usr/local/cuda" >&2
    exit 1
  fi
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCUDAToolkit_ROOT=/usr/local/cuda
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The Python package: pip install . into a venv in the build folder, then its tests (pytest's exit
# 5, no test collected, counts as a failure).
python_test() {
  python3 -m venv "$BUILD_DIR/venv"
  "$BUILD_DIR/venv/bin/pip" install -q . pytest
  local rc=0
  "$BUILD_DIR/venv/bin/python" -m pytest -q -rs tests/python || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no Python test" >&2
    return 1
  fi
  return "$rc"
}

case "${1:-}" in
  build)
    install_packages
    build
    "$BUILD_DIR"/examples/rnnjit-example kb-v0 tf32
    ;;
  test)
    install_packages
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
    python_test
    ;;
  *)
    echo "usage: $0 build|test" >&2
    exit 2
    ;;
esac
