# Sourced by scripts/start and scripts/test: a virtualenv in .venv with requirements/dev.txt.
# Re-installs only when a requirements file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON_BIN="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtualenv .venv with $("$PYTHON_BIN" --version)"
  "$PYTHON_BIN" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements/*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing requirements/dev.txt"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
