#!/bin/sh
# Regenerate the image's lock files from pyproject.toml: every package the server runs,
# at an exact version with the hashes of its files, for Python 3.11 on x86-64 Linux (the
# Dockerfile's base image). Run it after changing a dependency in pyproject.toml:
#
#   UV=/path/to/uv requirements/lock.sh
#
#   requirements/cpu.txt   torch's +cpu build, from the PyTorch CPU index (PyPI's Linux
#                          torch is the CUDA build, several GB); what `docker build` uses
#   requirements/cuda.txt  PyPI's torch with its CUDA libraries (TORCH_VARIANT=cuda)
#
# Needs uv (https://docs.astral.sh/uv/; `pip install uv`). Where the PyTorch index cannot
# be reached, TORCH_CPU_WHEELS names a folder holding the same torch +cpu wheel instead.
# `make install` and CI do not use these files: they install from pyproject.toml.
set -eu
cd "$(dirname "$0")/.."
UV=${UV:-uv}
CPU_INDEX=https://download.pytorch.org/whl/cpu
TORCH=$(sed -n 's/^ *"torch==\([^"]*\)",$/\1/p' pyproject.toml)
[ -n "$TORCH" ] || { echo "pyproject.toml must pin torch with ==" >&2; exit 1; }

compile() {
    "$UV" pip compile pyproject.toml requirements/build.in --quiet --generate-hashes \
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header "$@"
}
header() {
    printf '# Locked by requirements/lock.sh from pyproject.toml (torch %s): do not edit.\n' "$1"
}

overrides=$(mktemp)
trap 'rm -f "$overrides"' EXIT
echo "torch==$TORCH+cpu" > "$overrides"
if [ -n "${TORCH_CPU_WHEELS:-}" ]; then
    source_args="--find-links $TORCH_CPU_WHEELS"
else
    source_args="--extra-index-url $CPU_INDEX --index-strategy unsafe-best-match"
fi
# shellcheck disable=SC2086  # source_args is two or four words on purpose
body=$(compile --override "$overrides" $source_args)
{
    header "$TORCH+cpu"
    echo "--extra-index-url $CPU_INDEX"
    echo "$body"
} > requirements/cpu.txt

body=$(compile)
{ header "$TORCH"; echo "$body"; } > requirements/cuda.txt
echo "wrote requirements/cpu.txt and requirements/cuda.txt (torch $TORCH)"
