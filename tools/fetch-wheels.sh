#!/usr/bin/env bash
# Fill wheels/ with what tools/device-check.sh installs on a GPU machine that has no network: the
# wheels of ewaste's dependencies, of its bench extra and of pytest, for CPython 3.12 on manylinux
# x86_64, and ewaste's own wheel built from this checkout.
#
#   tools/fetch-wheels.sh [--exclude NAME]...
#
# Run it on a machine with network, from any folder; pip downloads for the target machine, not for
# this one. --exclude NAME leaves out the wheels of NAME (a package the GPU machine's python3 already
# has, such as numpy or scipy: the check's virtual environment sees that python's packages). It
# prints the folder's size at the end. CuPy is not fetched: the GPU machine brings its own, for its CUDA.
#
# Environment: PYTHON (default python3, 3.11 or later, with pip), WHEELS (default wheels/ of this
# checkout), WHEELS_PYTHON (target Python, default 3.12), WHEELS_GLIBC (the target's glibc, the
# newest manylinux tag accepted, default 2.28).
set -euo pipefail

here=${BASH_SOURCE[0]}
[[ $here == */* ]] && here=${here%/*} || here=.
root=$(cd "$here/.." && pwd)
py=${PYTHON:-python3}
dest=${WHEELS:-$root/wheels}
target=${WHEELS_PYTHON:-3.12}
glibc=${WHEELS_GLIBC:-2.28}

exclude=()
while (($#)); do
    case $1 in
    --exclude)
        [[ $# -ge 2 && -n $2 ]] || { echo "fetch-wheels: --exclude needs a package name" >&2; exit 2; }
        exclude+=("$2")
        shift 2
        ;;
    *)
        echo "fetch-wheels: usage: tools/fetch-wheels.sh [--exclude NAME]..." >&2
        exit 2
        ;;
    esac
done

# What device-check.sh installs: ewaste's dependencies, its bench extra and pytest (from the test extra).
mapfile -t requirements < <("$py" - "$root/pyproject.toml" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
extras = project["optional-dependencies"]
for requirement in project["dependencies"] + extras["bench"] + [r for r in extras["test"] if r.startswith("pytest")]:
    print(requirement)
EOF
)
((${#requirements[@]})) || { echo "fetch-wheels: no requirements read from $root/pyproject.toml" >&2; exit 2; }

platforms=(--platform manylinux2014_x86_64)
for ((minor = 17; minor <= ${glibc#*.}; minor++)); do
    platforms+=(--platform "manylinux_2_${minor}_x86_64")
done

mkdir -p "$dest"
"$py" -m pip download --only-binary=:all: --implementation cp --python-version "$target" "${platforms[@]}" \
    --dest "$dest" "${requirements[@]}"
"$py" -m pip wheel --no-deps --wheel-dir "$dest" "$root"

normal() { # a distribution name as wheel file names and pip compare it: lower case, runs of -_. as _
    local name=${1,,}
    name=${name//[-.]/_}
    while [[ $name == *__* ]]; do name=${name//__/_}; done
    echo "$name"
}
for name in "${exclude[@]}"; do
    gone=0
    for wheel in "$dest"/*.whl; do
        base=${wheel##*/}
        if [[ $(normal "${base%%-*}") == "$(normal "$name")" ]]; then
            rm -f -- "$wheel"
            gone=1
        fi
    done
    ((gone)) || echo "fetch-wheels: --exclude $name: no such wheel in $dest" >&2
done

echo "fetch-wheels: $(find "$dest" -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1) in $dest"
