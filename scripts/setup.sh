#!/usr/bin/env bash
# Installs the Debian packages ESB needs (when missing) and builds it into
# build/. Run as root on Debian 12. Safe to run again: it only installs what
# is missing and rebuilds what changed.
#
#   bash scripts/setup.sh                    # install what is missing, build
#   bash scripts/setup.sh --print-packages   # only print the package list
set -euo pipefail
cd "$(dirname "$0")/.."

# One package per line in scripts/packages.txt (the Dockerfile installs the
# same file); `#` starts a comment.
mapfile -t PACKAGES < <(sed -e 's/#.*//' scripts/packages.txt | tr -s ' \t' '\n' \
  | sed '/^$/d')
if ((${#PACKAGES[@]} == 0)); then
  echo "setup: no packages in scripts/packages.txt" >&2
  exit 1
fi
if [[ ${1:-} == --print-packages ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these packages are missing; run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESB_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
