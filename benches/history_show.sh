#!/usr/bin/env bash
# `windlass history` and `windlass show` on a large state, which read the indexes the state keeps
# beside the event log (install summaries) instead of folding every install's events.
#
# 1. INSTALLS (default 1,000) offline installs of examples/quickstart into one state directory,
#    then `history` and `show <an install in the middle>`, each timed RUNS times (default 7);
#    prints the median of each (goal: under 50 ms each).
# 2. HEAVY (default 150) offline installs of a generated 200-Deployment release (the case the
#    issue measured: 512 ms for `history`, 58x one `show`), then the same timings and the ratio
#    `history` / `show` (goal: within 5x).
# Also prints `history --json` for both (it prints every install's stages, so it still folds each
# install) and checks `verify-log` reports the indexes current.
#
# Usage: benches/history_show.sh [INSTALLS] [HEAVY]   (RUNS=7; needs cargo, python3 and bc)
set -euo pipefail
cd "$(dirname "$0")/.."

installs=${1:-1000}
heavy=${2:-150}
runs=${RUNS:-7}
cargo build --release --quiet --bin windlass
windlass=$PWD/target/release/windlass
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT

median_ms() { # command...: runs it RUNS times (output discarded), prints the median in ms
    local times=() started
    for _ in $(seq "$runs"); do
        started=$EPOCHREALTIME
        "$@" >/dev/null
        times+=("$(echo "($EPOCHREALTIME - $started) * 1000" | bc)")
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p" | xargs printf '%.1f'
}

fill() { # state, count, install args...: COUNT installs, prints how long they took
    local state=$1 count=$2 started
    shift 2
    started=$EPOCHREALTIME
    for _ in $(seq "$count"); do
        "$windlass" --state "$state" install --offline "$@" >/dev/null
    done
    printf '%.1f s' "$(echo "$EPOCHREALTIME - $started" | bc)"
}

measure() { # state, label
    local state=$1 label=$2 middle history show json
    "$windlass" --state "$state" verify-log | grep -q "indexes ok" || {
        echo "the indexes of $state do not reflect its log" >&2
        exit 1
    }
    middle=$("$windlass" --state "$state" history | awk -v n="$(( $("$windlass" --state "$state" history | wc -l) / 2 + 1 ))" 'NR == n { print $1 }')
    history=$(median_ms "$windlass" --state "$state" history)
    show=$(median_ms "$windlass" --state "$state" show "$middle")
    json=$(median_ms "$windlass" --state "$state" history --json)
    echo "$label: history $history ms, show $show ms (history / show = $(echo "scale=2; $history / $show" | bc)x), history --json $json ms"
}

echo "filling a state with $installs installs of examples/quickstart: $(fill "$work/small" "$installs" examples/quickstart)"
measure "$work/small" "$installs installs of examples/quickstart (median of $runs)"

release=$work/release
python3 benches/generate_release.py "$release" 200 "$work/installation.yaml"
echo "filling a state with $heavy installs of a 200-Deployment release: $(fill "$work/heavy" "$heavy" --known-images "$work/installation.yaml" "$release")"
measure "$work/heavy" "$heavy installs of a 200-Deployment release (median of $runs)"
