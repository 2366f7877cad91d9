#!/usr/bin/env bash
# Cross-builds the board's programs for arm64 (the ZCU102's Cortex-A53) and
# runs their tests there, under qemu-user:
#
#   1. installs scripts/packages-arm64.txt when missing (root; Debian 12, after
#      scripts/setup.sh): the cross toolchain, qemu-user-static and the arm64
#      libraries beside the amd64 ones. apt is never let remove a package;
#   2. configures build-arm64/ with cmake/aarch64-linux-gnu.cmake and builds
#      esb-agent, esbctl and their tests only (ccache, -j2; -O2 as
#      RelWithDebInfo, without its debug information, which takes a
#      quarter of the build's time);
#   3. checks that every binary is an AArch64 ELF and that esb-agent links no
#      libonnx;
#   4. runs esb_agent_test, esb_zcu102_test (the board backend on its device
#      emulator), esb_client_test, esb_client_agent_test, esb_format_test,
#      esb_runtime_test's CpuPaths and NarrowGemm cases and
#      esb_executor_test's EsbExecutorTest cases (the exact f32 path) under
#      `qemu-aarch64-static -L / -cpu cortex-a53`, each binary once (the
#      few cases that take minutes under emulation, on x86-64 paths or on
#      the quantizer's side, are left to the amd64 suite);
#   5. starts the arm64 esb-agent (sim backend, loopback, a free port) and
#      asks it with the arm64 esbctl for `board`: both say the CPU is
#      aarch64 and which code paths it takes.
#
#   bash scripts/cross_arm64.sh                   # install, build, test
#   bash scripts/cross_arm64.sh --install-only    # only step 1
#   bash scripts/cross_arm64.sh --print-packages  # only print the list
#
# ESB_JOBS sets the build's parallel jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build-arm64
JOBS=${ESB_JOBS:-2}
QEMU=(qemu-aarch64-static -L / -cpu cortex-a53)
TARGETS=(esb-agent esb_agent_test esb_zcu102_test esbctl esb_client_test
  esb_client_agent_test esb_format_test esb_runtime_test esb_executor_test
  esb_peak)

log() { echo "cross_arm64: $*"; }
die() {
  echo "cross_arm64: $*" >&2
  exit 1
}

mapfile -t PACKAGES < <(sed -e 's/#.*//' scripts/packages-arm64.txt \
  | tr -s ' \t' '\n' | sed '/^$/d')
if [[ ${1:-} == --print-packages ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

installed() {
  dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'
}
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

# Installs "$@" after a dry run shows apt removes nothing; extra apt options
# come in APT_OPTS. With NO_UPGRADE=1 the dry run must upgrade nothing either.
apt_install() {
  local plan
  plan=$(apt-get -s install --no-install-recommends --no-remove \
    "${APT_OPTS[@]}" "$@" 2>&1) || die "apt cannot install $*:"$'\n'"$plan"
  if grep -q '^Remv' <<<"$plan"; then
    die "installing $* would remove packages:"$'\n'"$(grep '^Remv' <<<"$plan")"
  fi
  if [[ ${NO_UPGRADE:-0} == 1 ]] && grep -qE '^Inst \S+ \[' <<<"$plan"; then
    die "installing $* would upgrade packages:"$'\n'"$(grep -E '^Inst \S+ \[' <<<"$plan")"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends --no-remove "${APT_OPTS[@]}" "$@" >/dev/null
}

# Two arm64 packages ship a file the amd64 one ships with other bytes
# (dpkg refuses both): libdnnl-dev's oneapi/dnnl/dnnl_config.h (the GPU
# runtime differs) and libonnxifi's /usr/lib/libonnxifi.so (outside the
# multiarch folders). They are installed without those files, at exactly
# the version of the amd64 package so that the amd64 one is not upgraded
# (and loses the file) in the same run.
SPECIAL=(libdnnl-dev:arm64 libonnx-dev:arm64)
DNNL_CONFIG=/usr/include/oneapi/dnnl/dnnl_config.h
ARM64_DNNL_CONFIG=/usr/include/aarch64-linux-gnu/oneapi/dnnl/dnnl_config.h

install_packages() {
  local missing=() special=() p
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    missing+=(arm64-architecture)
  fi
  for p in "${PACKAGES[@]}"; do
    installed "$p" && continue
    if [[ " ${SPECIAL[*]} " == *" $p "* ]]; then
      special+=("$p")
    else
      missing+=("$p")
    fi
  done
  [[ -f $ARM64_DNNL_CONFIG ]] || missing+=("$ARM64_DNNL_CONFIG")
  ((${#missing[@]} + ${#special[@]})) || return 0
  log "installing ${missing[*]} ${special[*]}"
  [[ $(id -u) -eq 0 ]] || die "these are missing; run as root to install them"
  for p in libdnnl-dev libonnx-dev libonnxifi; do
    installed "$p:amd64" || die "$p:amd64 is missing: run scripts/setup.sh first"
  done
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  local general=()
  for p in "${missing[@]}"; do
    [[ $p == /* || $p == arm64-architecture ]] || general+=("$p")
  done
  APT_OPTS=()
  ((${#general[@]} == 0)) || apt_install "${general[@]}"
  if ((${#special[@]})); then
    local dnnl onnx
    dnnl=$(version_of libdnnl-dev:amd64)
    onnx=$(version_of libonnx-dev:amd64)
    APT_OPTS=(-o "DPkg::Options::=--path-exclude=$DNNL_CONFIG"
      -o "DPkg::Options::=--path-exclude=/usr/lib/libonnxifi.so")
    NO_UPGRADE=1 apt_install "libdnnl-dev:arm64=$dnnl" \
      "libonnx-dev:arm64=$onnx" "libonnxifi:arm64=$onnx"
    APT_OPTS=()
  fi
  if [[ ! -f $ARM64_DNNL_CONFIG ]]; then
    # The arm64 dnnl_config.h, from its package, in the multiarch folder
    # the cross compiler searches before /usr/include.
    local tmp deb
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt downloads as _apt when it can.
    (cd "$tmp" && apt-get download -qq \
      "libdnnl-dev:arm64=$(version_of libdnnl-dev:arm64)" 2>/dev/null)
    deb=$(echo "$tmp"/libdnnl-dev_*_arm64.deb)
    [[ -f $deb ]] || die "could not download libdnnl-dev:arm64"
    mkdir -p "$(dirname "$ARM64_DNNL_CONFIG")"
    dpkg-deb --fsys-tarfile "$deb" \
      | tar -xO ".$DNNL_CONFIG" >"$ARM64_DNNL_CONFIG.tmp"
    mv "$ARM64_DNNL_CONFIG.tmp" "$ARM64_DNNL_CONFIG"
    rm -rf "$tmp"
  fi
  # The amd64 build's copies are still there.
  [[ -f $DNNL_CONFIG && -f /usr/lib/libonnxifi.so ]] \
    || die "an amd64 file went missing: reinstall libdnnl-dev:amd64 libonnxifi:amd64"
  for p in "${PACKAGES[@]}"; do
    installed "$p" || die "$p did not install"
  done
}

install_packages
[[ ${1:-} == --install-only ]] && exit 0

# Build.
start=$SECONDS
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DESB_WERROR=ON >/dev/null
else
  cmake -S . -B "$BUILD" >/dev/null
fi
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"
log "built ${TARGETS[*]} in $((SECONDS - start)) s"

# What was built is arm64.
BINARIES=(fpga_agent/esb-agent fpga_agent/esb_agent_test
  fpga_agent/esb_zcu102_test client/esbctl client/esb_client_test
  client/esb_client_agent_test core/esb/esb_format_test
  core/runtime/esb_runtime_test core/runtime/esb_executor_test)
for b in "${BINARIES[@]}"; do
  machine=$(readelf -h "$BUILD/$b" | sed -n 's/^ *Machine: *//p')
  [[ $machine == AArch64 ]] || die "$BUILD/$b is for '$machine', not AArch64"
  log "$b: ELF $(readelf -h "$BUILD/$b" | sed -n 's/^ *Class: *//p') $machine"
done
if readelf -d "$BUILD/fpga_agent/esb-agent" | grep NEEDED | grep -q onnx; then
  die "esb-agent links libonnx"
fi

# The tests, each binary once under qemu; their gtest output is kept in
# build-arm64/arm64-tests/.
out="$BUILD/arm64-tests"
rm -rf "$out"
mkdir -p "$out"
run_test() {  # BINARY [GTEST ARGS...]
  local b=$1 name
  name=$(basename "$b")
  shift
  local t=$SECONDS rc=0
  timeout 1200 "${QEMU[@]}" "$BUILD/$b" --gtest_brief=1 \
    --gtest_output="xml:$out/$name.xml" "$@" >"$out/$name.log" 2>&1 || rc=$?
  local passed
  passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?\.$/\1/p' \
    "$out/$name.log")
  if ((rc != 0)) || [[ -z $passed ]] || ((passed == 0)); then
    tail -50 "$out/$name.log" >&2
    die "$name failed under qemu-aarch64 (exit $rc); log: $out/$name.log"
  fi
  log "$name: $passed tests passed under ${QEMU[*]} ($((SECONDS - t)) s)"
}
run_test fpga_agent/esb_agent_test
# ThousandImages: 1000 images through both executors, 2.5 min emulated.
run_test fpga_agent/esb_zcu102_test --gtest_filter='-Demo/ThousandImages.*'
run_test client/esb_client_test
run_test client/esb_client_agent_test
# The DDA fits (the quantizer's, not the board's) take a minute emulated;
# the kernel-against-reference comparison has no AVX2 side on arm64.
run_test core/esb/esb_format_test --gtest_filter='-DdaTest.Mse*:DdaTest.HistogramFit*:QuantizeTest.KernelMatchesReference*'
run_test core/runtime/esb_runtime_test --gtest_filter='CpuPathsTest.*:NarrowGemmTest.*'
# The exact f32 path on arm64 oneDNN against the reference and the formulas
# (the split and demo-model cases take too long emulated).
run_test core/runtime/esb_executor_test --gtest_filter='EsbExecutorTest.*'
# qemu's Cortex-A53 is the board's: NEON, no SVE, so no native int8.
grep -q '^\[ cpu paths \] cpu aarch64: oneDNN ISA asimd; ESB layers on the exact f32 path' \
  "$out/esb_agent_test.log" \
  || die "esb_agent_test did not report the Cortex-A53's paths"
log "esb_agent_test saw: $(sed -n 's/^\[ cpu paths \] //p' \
  "$out/esb_agent_test.log")"

# The arm64 agent and esbctl talk over loopback.
dir=$(mktemp -d)
agent_pid=
cleanup() {
  if [[ -n $agent_pid ]]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
"${QEMU[@]}" "$BUILD/fpga_agent/esb-agent" --backend sim \
  --listen 127.0.0.1:0 --model-dir "$dir/models" --board arm64-check \
  >"$dir/agent.out" 2>"$dir/agent.err" &
agent_pid=$!
address=
for _ in $(seq 600); do  # 60 s at most.
  address=$(sed -n 's/^esb-agent listening on //p' "$dir/agent.out")
  [[ -n $address ]] && break
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $address ]] || die "the arm64 esb-agent did not start: $(cat "$dir/agent.err")"
grep -q '^esb-agent: cpu aarch64: oneDNN ISA ' "$dir/agent.err" \
  || die "the arm64 esb-agent did not log its CPU paths: $(cat "$dir/agent.err")"
board=$(timeout 120 "${QEMU[@]}" "$BUILD/client/esbctl" board \
  --agent "$address")
if ! grep -q '^board        arm64-check' <<<"$board" \
  || ! grep -q '^host         cpu aarch64: ' <<<"$board"; then
  die "esbctl board (arm64) said:"$'\n'"$board"
fi
log "esb-agent (arm64) at $address logged: $(head -1 "$dir/agent.err")"
log "esbctl board (arm64): $(grep '^host' <<<"$board")"
kill -TERM "$agent_pid"
wait "$agent_pid" || die "the arm64 esb-agent did not stop cleanly"
agent_pid=
log "done in $((SECONDS - start)) s"
