#!/usr/bin/env bash
# Style checks, run by CTest: `lint.sh format` checks clang-format on every
# tracked C++ file; `lint.sh tidy BUILD_DIR [SHARD COUNT]` runs clang-tidy with
# the checked-in .clang-tidy over the project's sources, or over the SHARD-th of
# COUNT interleaved slices of them (CTest runs the slices as separate tests, so
# they share the machine with the rest of the suite instead of racing it).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' 2>/dev/null || find core client tests bench -name '*.cc' -o -name '*.h')
case "${1:-}" in
  format)
    clang-format --dry-run -Werror "${files[@]}"
    echo "clang-format: ${#files[@]} files clean"
    ;;
  tidy)
    build=${2:?usage: lint.sh tidy BUILD_DIR [SHARD COUNT]}
    shard=${3:-0}
    count=${4:-1}
    jobs=$(nproc)
    ((count == 1)) || jobs=1
    # Library and binary sources; tests are left out (gtest's headers make
    # them slow to analyse and they are not shipped).
    mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep '\.cc$' \
      | grep -v -e '_test\.cc$' -e '^bench/' -e '^tests/' \
      | awk -v s="$shard" -v c="$count" '(NR - 1) % c == s')
    log=$(mktemp)
    status=0
    printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -n 1 \
      clang-tidy -p "$build" --quiet --warnings-as-errors='*' >"$log" 2>&1 \
      || status=$?
    grep -v "warnings generated" "$log" || true
    rm -f "$log"
    ((status == 0)) || exit 1
    echo "clang-tidy: ${#sources[@]} files clean"
    ;;
  *)
    echo "usage: lint.sh format | tidy BUILD_DIR" >&2
    exit 2
    ;;
esac
