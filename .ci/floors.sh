#!/usr/bin/env bash
# The floor check: truncflow with exactly the lowest versions of its dependencies that it declares.
#
#   .ci/floors.sh [VENV]        VENV: the venv to (re)create, default .venv-floors
#   PYTHON=python3.12 .ci/floors.sh /tmp/v312     another interpreter (default python3; the floors
#                                                 are meant for 3.11, the floor of requires-python)
#
# 1. .ci/floors.txt (name==X) must agree with pyproject.toml's [project] dependencies (name>=X);
# 2. a fresh venv gets exactly the pins of .ci/floors.txt, then truncflow itself, built from a copy of this
#    working tree (pyproject.toml, README.md, LICENSE, truncflow/) as a pip user gets it: no extras, no
#    editable install, dependencies constrained to the pins;
# 3. .ci/floors_check.py runs there: the README quick start, truncflow example-config > cfg.toml, a short
#    truncflow sweep and truncflow report, and the core float64 checks.
# Needs the package registry (PyPI) and about 1 GB of disk for the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-floors}"
PYTHON="${PYTHON:-python3}"
FLOORS=.ci/floors.txt

command -v "$PYTHON" >/dev/null || { echo "floors: no Python interpreter '$PYTHON' (set PYTHON=...)" >&2; exit 2; }
"$PYTHON" .ci/floors_check.py --consistency-only

if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
  echo "floors: $VENV exists and is not a virtual environment; refusing to replace it" >&2
  exit 2
fi
rm -rf "$VENV"
echo "floors: creating $VENV with $("$PYTHON" --version)"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
"${PIP[@]}" install --upgrade pip
echo "floors: installing $(grep -v '^#' "$FLOORS" | tr '\n' ' ')"
"${PIP[@]}" install -r "$FLOORS"

SRC="$(mktemp -d "${TMPDIR:-/tmp}/truncflow-floors-src.XXXXXX")"
trap 'rm -rf "$SRC"' EXIT
cp -r pyproject.toml README.md LICENSE truncflow "$SRC/"
rm -rf "$SRC/truncflow/__pycache__"
echo "floors: installing truncflow (no extras) from a copy of the working tree"
"${PIP[@]}" install -c "$FLOORS" "$SRC"

"$VENV/bin/python" .ci/floors_check.py "$PWD"
