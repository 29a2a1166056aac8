#!/usr/bin/env bash
# cmake --install into a temporary prefix, then find_package(rnnjit) from another project.
#   install_test.sh BUILD_DIR SOURCE_OF_CONSUMER
set -euo pipefail
build=$1 consumer=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
cmake -S "$consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCUDAToolkit_ROOT=/usr/local/cuda > /dev/null
cmake --build "$work/build" > /dev/null
"$work/build/app"
