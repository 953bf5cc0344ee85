#!/usr/bin/env bash
# Benchmark for issue 17 (`windlass watch`):
#  1. Latency: the time from a release's `.ready` marker to its install completing (its
#     `ReleaseFinished` record), for benches/generate_release.py's 1,000-Deployment release,
#     against the install's own time (its recorded duration) — goal: under 0.5 s of overhead —
#     and against `windlass install` of the same release run from the command line.
#  2. Idle cost: the daemon's CPU use and resident memory while it watches a directory of 100
#     installed releases (copies of examples/quickstart), over $IDLE_SECONDS (default 60).
# Releases are installed with `--offline --known-images`; each latency run uses a release that
# differs from the others in one file, dropped with a 60 s quiet period so only the marker takes it.
#
# Usage: benches/daemon.sh [COUNT]     (default: 1000)
# Needs: cargo, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000}
repeat=${REPEAT:-3}
idle_seconds=${IDLE_SECONDS:-60}
if [[ -z ${WINDLASS_BIN:-} ]]; then
    cargo build --release --quiet --bin windlass
    windlass=$PWD/target/release/windlass
else
    windlass=$WINDLASS_BIN
fi
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
daemon_pid=
cleanup() {
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_daemon() { # state, dir, extra args...: starts the daemon, sets $address and $daemon_pid
    local state=$1 dir=$2
    shift 2
    "$windlass" --state "$state" watch "$dir" --offline --listen 0 "$@" 2>"$work/daemon.log" &
    daemon_pid=$!
    for _ in $(seq 1 300); do
        address=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/daemon.log" | head -1 || true)
        [[ -n $address ]] && curl -sf "$address/readyz" >/dev/null && return
        sleep 0.1
    done
    echo "error: the daemon did not start:" >&2
    cat "$work/daemon.log" >&2
    exit 1
}

stop_daemon() {
    kill "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=
}

python3 benches/generate_release.py "$work/release" "$count" "$work/installation.yaml"

echo "== 1. latency: .ready marker to install completed ($count Deployments, $repeat runs)"
for run in $(seq 1 "$repeat"); do
    state=$work/cli-state-$run
    started=$EPOCHREALTIME
    "$windlass" --state "$state" install --offline --known-images "$work/installation.yaml" --json \
        "$work/release" >"$work/cli.json"
    finished=$EPOCHREALTIME
    python3 - "$work/cli.json" "$started" "$finished" <<'PY'
import json, sys
outcome = json.load(open(sys.argv[1]))
assert outcome["status"] == "completed", outcome["status"]
print(f"windlass install (command line): {float(sys.argv[3]) - float(sys.argv[2]):.3f} s wall, "
      f"install's own time {outcome['duration_ms'] / 1000:.3f} s")
PY
done

mkdir -p "$work/watched"
start_daemon "$work/watch-state" "$work/watched" --known-images "$work/installation.yaml" --quiet-period 60s
for run in $(seq 1 "$repeat"); do
    release=$work/watched/release-$run
    cp -r "$work/release" "$release"
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-run\ndata:\n  run: "%s"\n' "$run" \
        >"$release/manifests/bench-run.yaml"
    sleep 1 # let the copy's events settle; the 60 s quiet period keeps it from being taken
    marked=$EPOCHREALTIME
    touch "$release/.ready"
    python3 - "$address" "release-$run" "$marked" <<'PY'
import json, sys, time, urllib.request
from datetime import datetime
address, name, marked = sys.argv[1], sys.argv[2], float(sys.argv[3])
def get(path):
    with urllib.request.urlopen(address + path, timeout=30) as response:
        return json.load(response)
deadline = time.time() + 600
while True:
    releases = get("/api/releases")["releases"]
    release = next((r for r in releases if r["name"] == name), None)
    if release and release["status"] in ("completed", "failed"):
        break
    assert time.time() < deadline, "not installed within 600 s"
    time.sleep(0.02)
assert release["status"] == "completed", release
install = get(f"/api/installs/{release['install_id']}")
stream = [e for e in get(f"/api/installs/{release['install_id']}/events")]
def epoch(text):
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (fraction or "0"))
started = epoch(stream[0]["recorded_at"])
finished = epoch(stream[-1]["recorded_at"])
own = install["duration_ms"] / 1000
# ReleaseFinished is recorded right after the install's last event; the poll adds up to 20 ms.
print(f"daemon: marker to install completed {finished - marked:.3f} s; install's own time {own:.3f} s; "
      f"overhead {finished - marked - own:.3f} s (marker to InstallStarted {started - marked:.3f} s)")
PY
done
stop_daemon

echo "== 2. idle: watching 100 installed releases for ${idle_seconds} s"
mkdir -p "$work/idle"
for index in $(seq 1 100); do
    cp -r examples/quickstart "$work/idle/app-$index"
    sed -i "s/sidecar:1/sidecar:$index/" "$work/idle/app-$index/kots-app.yaml"
    touch "$work/idle/app-$index/.ready"
done
start_daemon "$work/idle-state" "$work/idle"
python3 - "$address" <<'PY'
import json, sys, time, urllib.request
deadline = time.time() + 900
while True:
    with urllib.request.urlopen(sys.argv[1] + "/api/releases", timeout=30) as response:
        releases = json.load(response)["releases"]
    done = [r for r in releases if r["status"] == "completed"]
    if len(releases) == 100 and len(done) == 100:
        break
    assert time.time() < deadline, f"{len(done)} of 100 installed within 900 s"
    time.sleep(0.5)
PY
sleep 2
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$daemon_pid/stat"; }
before=$(cpu)
sleep "$idle_seconds"
after=$(cpu)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon_pid/status")
threads=$(ls "/proc/$daemon_pid/task" | wc -l)
rescans=$(curl -sf "$address/metrics" | awk '/^windlass_watch_rescans_total/ { sum += $2 } END { print sum }')
echo "idle: $(echo "scale=3; ($after - $before) / $ticks" | bc) s CPU over ${idle_seconds} s" \
    "($(echo "scale=3; 100 * ($after - $before) / $ticks / $idle_seconds" | bc)% of one core)," \
    "RSS $((rss / 1024)) MiB, $threads threads, $rescans rescans in all"
stop_daemon
