#!/usr/bin/env bash
# The GPU checks, on a machine with an NVIDIA GPU and no network: tests/test_gpu.py,
# tests/test_kernels.py and benchmarks/test_gpu_speed.py, with their logs kept.
#
#   tools/device-check.sh OUTDIR
#
# Needs python3 (3.12) with CuPy for the machine's CUDA installed in it (e.g. cupy-cuda13x), and in
# wheels/ the wheels of ewaste and of what it needs beyond that (tools/fetch-wheels.sh fills wheels/
# on a machine with network). Makes a virtual environment that also sees python3's own packages (CuPy
# among them), installs ewaste[bench] and pytest from wheels/ only, then runs the tests and the
# benchmarks, each under a time limit (about 5 minutes in all). Writes to OUTDIR: nvidia-smi.txt,
# ewaste-info.txt, pip-list.txt, install.log, tests.log and tests.xml (JUnit), bench.log and
# bench.xml, and summary.txt (each step's exit status).
#
# Exit status: 0 all passed; 1 a test or benchmark failed or ran out of time; 2 nothing was run (no
# usable GPU, no wheels, the install failed), with one line on stderr saying why. The GPU is checked
# first, with nothing but the shell, nvidia-smi and python3, so a machine without one is refused at once.
#
# Environment: PYTHON (default python3), WHEELS (default wheels/ of this checkout), VENV (default a new
# folder under $TMPDIR or /tmp), TESTS_TIMEOUT and BENCH_TIMEOUT (seconds; default 140 and 90).
set -uo pipefail

fail() {
    echo "device-check: $*" >&2
    exit 2
}

[[ $# -eq 1 && -n $1 ]] || fail "usage: tools/device-check.sh OUTDIR"
out=$1
here=${BASH_SOURCE[0]}
[[ $here == */* ]] && here=${here%/*} || here=.
root=$(cd "$here/.." && pwd) || fail "cannot find the checkout from $here"
py=${PYTHON:-python3}

# 1. A usable GPU, before anything is created.
command -v nvidia-smi >/dev/null || fail "no usable GPU: nvidia-smi not found (no NVIDIA driver); nothing was run"
gpus=$(nvidia-smi -L 2>&1) || fail "no usable GPU: nvidia-smi failed: ${gpus//$'\n'/ }; nothing was run"
[[ $gpus == *GPU* ]] || fail "no usable GPU: nvidia-smi lists none; nothing was run"
command -v "$py" >/dev/null || fail "$py not found; nothing was run"
probe=$("$py" - 2>&1 <<'EOF'
import cupy

count = cupy.cuda.runtime.getDeviceCount()
assert int(cupy.arange(4).sum()) == 6, "a CuPy kernel gave a wrong sum"
print(f"{count} device(s), CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
EOF
) || fail "no usable GPU: CuPy cannot run on it with $py: ${probe##*$'\n'}; nothing was run"

# 2. The wheels.
wheels=${WHEELS:-$root/wheels}
shopt -s nullglob
found=("$wheels"/ewaste-*.whl)
shopt -u nullglob
((${#found[@]})) || fail "no ewaste wheel in $wheels: run tools/fetch-wheels.sh on a machine with network and bring the folder along; nothing was run"

# 3. A virtual environment that sees python3's CuPy, with ewaste installed from the wheels only.
mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd)
echo "device-check: ${gpus//$'\n'/; }; $probe"
venv=${VENV:-$(mktemp -d "${TMPDIR:-/tmp}/ewaste-device-check.XXXXXX")/venv}
{
    "$py" -m venv --system-site-packages "$venv" &&
        "$venv/bin/python" -m pip install --no-index --find-links "$wheels" "ewaste[bench]" pytest &&
        (cd "$out" && "$venv/bin/python" -c 'import ewaste; print("ewaste imported from", ewaste.__file__)')
} >"$out/install.log" 2>&1 || fail "the install from $wheels failed: see $out/install.log"

# 4. What runs where, then the tests and the benchmarks (logs in OUTDIR as they run).
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
"$venv/bin/python" -m pip list >"$out/pip-list.txt" 2>&1
(cd "$out" && "$venv/bin/ewaste" info) >"$out/ewaste-info.txt" 2>&1
echo "ewaste info: exit $?" >"$out/summary.txt"
cat "$out/ewaste-info.txt"

step() { # name, time limit in seconds, pytest arguments
    local name=$1 limit=$2
    shift 2
    # -P: the installed ewaste, not the checkout's source folder; -o addopts=: one process (the GPU
    # is one device; pytest-xdist is not installed here)
    (cd "$root" && timeout -k 10 "$limit" "$venv/bin/python" -P -m pytest -q -rfEs -p no:cacheprovider -o addopts= \
        --junitxml="$out/$name.xml" "$@") 2>&1 | tee "$out/$name.log"
    local status=${PIPESTATUS[0]}
    echo "$name: exit $status$( ((status == 124 || status == 137)) && echo " (over ${limit} s)")" | tee -a "$out/summary.txt"
    return "$status"
}

failed=0
step tests "${TESTS_TIMEOUT:-140}" tests/test_gpu.py tests/test_kernels.py || failed=1
step bench "${BENCH_TIMEOUT:-90}" -s benchmarks/test_gpu_speed.py || failed=1
# A GPU test skipped for want of a GPU is a failure here: the point is to run them on one.
if grep -h "no usable GPU" "$out/tests.log" "$out/bench.log" | head -1 | grep .; then
    echo "device-check: GPU tests were skipped although the GPU answered (see ewaste-info.txt)" | tee -a "$out/summary.txt"
    failed=1
fi
echo "device-check: results in $out"
exit "$failed"
