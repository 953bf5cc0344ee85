#!/usr/bin/env bash
# Crash-and-resume check on a big release: generates a release of COUNT Deployments (default
# 2,000; see generate_release.py), installs it once undisturbed as the reference, then TRIALS times
# (default 20) starts the same install in a fresh state directory, kills it with SIGKILL at a
# random moment inside the reference's duration (every third trial is killed twice in a row), runs
# the same command again until it completes, and checks that:
#   - the rerun exits 0 and the state holds exactly one install, `completed`;
#   - `windlass verify-log` accepts the log;
#   - the output directory is byte-identical to the reference's (upstream/, base/, overlays/,
#     rendered/; windlass's own marker and lock files aside).
# Prints where each kill landed (the stages completed by then) and "N of N resumed"; exits 1 on
# the first failure. Kills that land after the process has already finished are not counted.
#
# Usage: benches/crash_resume.sh [COUNT]      (TRIALS=20 by default; needs cargo and python3)
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-2000}
trials=${TRIALS:-20}
cargo build --release --quiet
windlass=$PWD/target/release/windlass
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT

release=$work/release
known=$work/installation.yaml
python3 benches/generate_release.py "$release" "$count" "$known"
install() { # state, out: the install command every run uses (exec: in the background, the pid
    # that gets killed must be windlass itself, not a subshell around it)
    exec "$windlass" --state "$1" install --offline --known-images "$known" --out "$2" "$release"
}
same_tree() { # reference, candidate: byte-identical apart from windlass's marker and lock files
    diff -r --exclude='.windlass*' "$1" "$2" >"$work/diff" 2>&1
}

started=$EPOCHREALTIME
(install "$work/ref-state" "$work/ref-out") >/dev/null
reference_ms=$(echo "($EPOCHREALTIME - $started) * 1000 / 1" | bc)
echo "reference install of $count Deployments: $reference_ms ms"

resumed=0
interrupted=0
for trial in $(seq 1 "$trials"); do
    state=$work/state-$trial
    out=$work/out-$trial
    kills=1
    ((trial % 3 == 0)) && kills=2
    landed=()
    for _ in $(seq 1 "$kills"); do
        delay_ms=$((RANDOM % (reference_ms + reference_ms / 10 + 1)))
        install "$state" "$out" >"$work/killed.out" 2>&1 &
        pid=$!
        sleep "$(printf '0.%03d' "$delay_ms")"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            done_stages=$("$windlass" --state "$state" history --json 2>/dev/null |
                python3 -c 'import json,sys; h=json.load(sys.stdin); print(",".join(x["name"] for x in h[0]["stages"] if x["status"]=="completed") or "-" if h else "nothing recorded")' 2>/dev/null ||
                echo "no state yet")
            landed+=("${delay_ms}ms:[$done_stages]")
        else
            wait "$pid" 2>/dev/null || true
            landed+=("${delay_ms}ms:finished-first")
        fi
    done
    if [[ ${landed[*]} == *finished-first* && ${#landed[@]} -eq 1 ]]; then
        echo "trial $trial: the kill came after the install finished; not counted"
        continue
    fi
    interrupted=$((interrupted + 1))
    if ! (install "$state" "$out") >"$work/rerun.out" 2>&1; then
        echo "trial $trial (${landed[*]}): the rerun failed:" >&2
        tail -20 "$work/rerun.out" >&2
        exit 1
    fi
    installs=$("$windlass" --state "$state" history --json |
        python3 -c 'import json,sys; h=json.load(sys.stdin); print(len(h), " ".join(i["status"] for i in h))')
    if [[ $installs != "1 completed" ]]; then
        echo "trial $trial (${landed[*]}): expected one completed install, history says: $installs" >&2
        exit 1
    fi
    if ! "$windlass" --state "$state" verify-log >"$work/verify.out" 2>&1; then
        echo "trial $trial (${landed[*]}): verify-log failed:" >&2
        cat "$work/verify.out" >&2
        exit 1
    fi
    if ! same_tree "$work/ref-out" "$out"; then
        echo "trial $trial (${landed[*]}): output differs from the reference:" >&2
        head -20 "$work/diff" >&2
        exit 1
    fi
    resumed=$((resumed + 1))
    echo "trial $trial: killed at ${landed[*]}; $(head -1 "$work/rerun.out")"
done
echo "$resumed of $interrupted interrupted installs of $count Deployments resumed to output identical to an undisturbed install"
