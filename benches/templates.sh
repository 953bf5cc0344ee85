#!/usr/bin/env bash
# Benchmark for issue 14: the cost of KOTS templating. Generates two releases of COUNT Deployments
# (default 1,000) with the same Config — one whose Deployments each make five template calls
# (four ConfigOption, one LicenseFieldValue), one with the rendered values written literally —
# and runs `windlass install --offline --known-images ...` on each, alternating, REPEAT times
# (default 7), each into a fresh state and output directory, in the same run. Prints the median
# wall time of each and the overhead of templating.
#
# Usage: benches/templates.sh [COUNT]       PROFILE=release (default) or debug
# Needs: cargo, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000}
repeat=${REPEAT:-7}
profile=${PROFILE:-release}
if [[ $profile == release ]]; then
    cargo build --release --quiet
else
    cargo build --quiet
fi
windlass=$PWD/target/$profile/windlass
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT

python3 benches/generate_release.py "$work/plain" "$count" "$work/known.yaml" plain
python3 benches/generate_release.py "$work/templated" "$count" "$work/known.yaml" templated

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run_once() { # form, trial: prints seconds
    local form=$1 trial=$2 started finished
    started=$(date +%s.%N)
    "$windlass" --state "$work/state-$form-$trial" install --offline \
        --known-images "$work/known.yaml" --out "$work/out-$form-$trial" "$work/$form" >/dev/null
    finished=$(date +%s.%N)
    rm -rf "$work/state-$form-$trial" "$work/out-$form-$trial"
    echo "$finished - $started" | bc -l
}

plain=() templated=()
for trial in $(seq "$repeat"); do
    plain+=("$(run_once plain "$trial")")
    templated+=("$(run_once templated "$trial")")
done
p=$(median "${plain[@]}")
t=$(median "${templated[@]}")
printf 'plain:     %.3f s (median of %d)\n' "$p" "$repeat"
printf 'templated: %.3f s (median of %d)\n' "$t" "$repeat"
printf 'templating adds %.1f%%\n' "$(echo "($t - $p) / $p * 100" | bc -l)"
