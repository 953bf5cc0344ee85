#!/usr/bin/env bash
# Benchmark for issue 16: `windlass replay` of a 10,000-Deployment install (goal: under 1 s, and
# no slower than the original install, measured in the same run) and `windlass diff` of two
# 10,000-Deployment installs whose releases differ in 1% of their documents (goal: under 0.5 s).
# The release is benches/generate_release.py's (as in render_vs_kustomize.sh), installed with
# `--offline --known-images`; the second release adds an env entry to every 100th Deployment.
# Each command runs $REPEAT times (default 3) and the median is printed; every install goes into a
# fresh state and output directory, and the replays and the diff read the first install's state.
#
# Usage: benches/replay_and_diff.sh [COUNT]     (default: 10000)
#
# See render_vs_kustomize.sh on ext4's slow file creation right after a large `rm -rf`: wait five
# minutes after an earlier run before trusting the figures.
# Needs: cargo, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-10000}
repeat=${REPEAT:-3}
cargo build --release --quiet --bin windlass
windlass=$PWD/target/release/windlass
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT

median() { # values...: prints the median
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

measure() { # label, command...: prints "label: <seconds> s"; stdout is kept in $work/stdout
    local label=$1 started finished seconds
    shift
    sync
    started=$EPOCHREALTIME
    "$@" >"$work/stdout" 2>"$work/stderr" || {
        echo "error: $label failed:" >&2
        tail -20 "$work/stderr" "$work/stdout" >&2
        exit 1
    }
    finished=$EPOCHREALTIME
    seconds=$(echo "$finished - $started" | bc -l)
    printf '%-52s %8.3f s\n' "$label:" "$seconds"
    echo "$seconds" >"$work/last-seconds"
}

install_id() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["install_id"])' "$work/stdout"; }

python3 benches/generate_release.py "$work/release-a" "$count" "$work/installation.yaml"
cp -r "$work/release-a" "$work/release-b"
python3 - "$work/release-b" "$count" <<'PY'
import sys
release, count = sys.argv[1], int(sys.argv[2])
changed = 0
for index in range(0, count, 100):
    path = f"{release}/manifests/deployment-{index}.yaml"
    text = open(path).read()
    text = text.replace("          image: nginx:1.25\n",
                        "          image: nginx:1.25\n          env:\n            - name: VARIANT\n              value: b\n")
    open(path, "w").write(text)
    changed += 1
print(f"release b: {changed} of {count} Deployments changed")
PY
echo "== $count Deployments"
installs=()
for run in $(seq 1 "$repeat"); do
    measure "install --offline --known-images (run $run)" \
        "$windlass" --state "$work/state-$run" install --offline --json \
        --known-images "$work/installation.yaml" --out "$work/out-$run" "$work/release-a"
    installs+=("$(cat "$work/last-seconds")")
    [[ $run == 1 ]] && first=$(install_id)
done
install_seconds=$(median "${installs[@]}")
printf '%-52s %8.3f s\n' "install median of $repeat:" "$install_seconds"

replays=()
for run in $(seq 1 "$repeat"); do
    measure "replay (run $run)" "$windlass" --state "$work/state-1" replay "$first"
    replays+=("$(cat "$work/last-seconds")")
done
replay_seconds=$(median "${replays[@]}")
printf '%-52s %8.3f s\n' "replay median of $repeat:" "$replay_seconds"
printf '%-52s %8.2f x\n' "ratio (replay / install):" "$(echo "$replay_seconds / $install_seconds" | bc -l)"

measure "install of release b into the same state" \
    "$windlass" --state "$work/state-1" install --offline --json \
    --known-images "$work/installation.yaml" --out "$work/out-b" "$work/release-b"
second=$(install_id)
diffs=()
for run in $(seq 1 "$repeat"); do
    measure "diff (run $run)" "$windlass" --state "$work/state-1" diff "$first" "$second"
    diffs+=("$(cat "$work/last-seconds")")
done
head -1 "$work/stdout"
printf '%-52s %8.3f s\n' "diff median of $repeat:" "$(median "${diffs[@]}")"
