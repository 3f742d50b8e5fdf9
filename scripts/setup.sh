#!/usr/bin/env bash
# Create the virtual environment VENV (default .venv) with everything livegesture needs.
# Called by `make`; safe to re-run. Environment:
#   PYTHON            interpreter to build the venv from (default: python3.11, else python3)
#   TORCH_INDEX_URL   a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cpu, for machines
#                     where plain `pip install torch==2.13.0` would fetch a CUDA build
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-$(command -v python3.11 || command -v python3)}

"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
"${pip[@]}" --upgrade "pip>=23" "setuptools>=64" wheel
"${pip[@]}" -r requirements/core.txt -r requirements/cri.txt -r requirements/test.txt

# torch: exactly the pinned CPU build (see requirements/train.txt).
torch_index=()
[ -n "${TORCH_INDEX_URL:-}" ] && torch_index=(--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple)
"${pip[@]}" "${torch_index[@]}" -r requirements/train.txt

# Packages whose declared dependencies or Python range are wrong for this stack (see the file).
"${pip[@]}" --no-deps --ignore-requires-python -r requirements/nodeps.txt

"${pip[@]}" --no-deps --no-build-isolation -e .
"$venv/bin/python" -c "import livegesture, dv_processing, torch, spikingjelly.activation_based, hs_api.api" \
  || { echo "setup: the environment in $venv does not import; see the messages above" >&2; exit 1; }
echo "setup: $venv is ready ($("$venv/bin/python" --version))"
