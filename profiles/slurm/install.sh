#!/usr/bin/env bash
# One-time set-up so that `snakemake --profile slurm` finds this profile.
#
# `--profile NAME` looks in the current directory, then in
# ${XDG_CONFIG_HOME:-~/.config}/snakemake/NAME, then /etc/xdg/snakemake/NAME;
# never in the repository's profiles/. This links the user location to this
# folder, so later edits here take effect without copying again.
#   bash profiles/slurm/install.sh            link (idempotent)
#   bash profiles/slurm/install.sh --force    move whatever is there aside first
set -euo pipefail

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    *) echo "$0: unknown option $arg" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
name=$(basename "$here")
dest="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake/$name"

if [ -L "$dest" ] && [ "$(readlink -f "$dest")" = "$here" ]; then
  echo "profile '$name': $dest already links to $here"
  exit 0
fi
if [ -e "$dest" ] || [ -L "$dest" ]; then
  if [ "$force" != 1 ]; then
    echo "$0: $dest exists and is not a link to $here; move it away or rerun with --force" >&2
    exit 1
  fi
  backup="$dest.bak.$(date +%Y%m%d%H%M%S)"
  mv "$dest" "$backup"
  echo "profile '$name': moved the old $dest to $backup"
fi
mkdir -p "$(dirname "$dest")"
ln -s "$here" "$dest"
echo "profile '$name': linked $dest -> $here"
