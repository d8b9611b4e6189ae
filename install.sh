#!/usr/bin/env bash
# Set up everything the workflow needs in ./.venv (idempotent: a second run
# only checks). Options:
#   --test   also install what the tests need outside Python (pdflatex with
#            booktabs, headless Chromium; via apt-get when run as root or with
#            sudo; as root also Slurm and munge for tests/test_slurm.py)
set -euo pipefail
cd "$(dirname "$0")"

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: please install $* with your package manager" >&2
    return 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  # Debian's python3 lacks ensurepip until python3-venv is installed.
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi

if [ "$want_test" = 1 ]; then
  # pdflatex with booktabs compiles the table; headless Chromium renders the HTML report.
  need=()
  command -v pdflatex >/dev/null || need+=(texlive-latex-base texlive-latex-recommended)
  command -v chromium >/dev/null || need+=(chromium)
  # tests/test_slurm.py starts its own single-node Slurm (.ci/slurm-up.sh),
  # which needs root; the packages' own services are not used.
  if [ "$(id -u)" = 0 ] && ! PATH="$PATH:/usr/sbin" command -v slurmd >/dev/null; then
    need+=(slurmctld slurmd slurm-client munge)
  fi
  [ ${#need[@]} = 0 ] || apt_install "${need[@]}"
fi
echo "install.sh: ready (.venv: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
