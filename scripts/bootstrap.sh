#!/usr/bin/env bash
# Makes libtorch available to the build, installing it when missing.
#
#   scripts/bootstrap.sh            libtorch for the build (skipped when LIBTORCH is set)
#   scripts/bootstrap.sh --python   also the Python side the tests need (torch, safetensors,
#                                   pyarrow, numpy, prometheus_client, polars), even when LIBTORCH is set
#
# The venv is $DRIFTD_VENV, or .venv in the repository. It holds PyPI's
# torch==2.13.0 wheel (the libtorch tch 0.26 expects). `.libtorch` is pointed
# at its torch directory so plain `cargo build` finds it (.cargo/config.toml).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${DRIFTD_VENV:-$repo/.venv}
torch_version=2.13.0
want_python=0
[[ "${1:-}" == "--python" ]] && want_python=1

if [[ -n "${LIBTORCH:-}" && $want_python == 0 ]]; then
    if [[ ! -e "$LIBTORCH/lib/libtorch_cpu.so" ]]; then
        echo "bootstrap: LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so" >&2
        exit 1
    fi
    exit 0
fi

marker="$venv/.driftd-torch-$torch_version"
if [[ ! -e "$marker" ]]; then
    echo "bootstrap: installing torch==$torch_version into $venv (about 5 GB, a few minutes)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check -q \
        "torch==$torch_version" safetensors numpy pyarrow prometheus_client polars
    touch "$marker"
fi
# Added after the first release of this script: venvs made before it lack it.
if [[ $want_python == 1 ]] && ! "$venv/bin/python" -c 'import prometheus_client, polars' 2>/dev/null; then
    "$venv/bin/pip" install --disable-pip-version-check -q prometheus_client polars
fi

torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null | tail -n 1)
if [[ ! -e "$torch_dir/lib/libtorch_cpu.so" ]]; then
    echo "bootstrap: $venv has no usable torch (expected $torch_dir/lib/libtorch_cpu.so)" >&2
    exit 1
fi
if [[ -z "${LIBTORCH:-}" ]]; then
    ln -sfn "$torch_dir" "$repo/.libtorch"
fi
