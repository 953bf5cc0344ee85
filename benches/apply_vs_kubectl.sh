#!/usr/bin/env bash
# Benchmark for issue 13: render a generated release of COUNT Deployments (default 1,000) with
# `windlass install --offline`, then, against ONE test API server in the same run
# (`apply/examples/bench_apiserver.rs`: the workspace's FAKE Kubernetes API server, since no real
# API server can run on these machines; it counts every request it serves):
#   1. the real `kubectl apply --server-side -f <copy of rendered/this-cluster/>` (kubectl 1.33),
#      then the same command again (nothing changed);
#   2. `windlass apply <install> --target kube` (release build), then the same command again.
# kubectl goes into namespace kubectl-bench and gets the Deployments only (the rendered pull
# secret names windlass's namespace); windlass goes into windlass-bench (the install's
# --namespace) and applies the Deployments and the pull secret. Prints wall times, request counts
# (total, writes, dry runs, by verb) and the ratios. windlass's figures include its process start
# and the event log; kubectl's include its discovery and OpenAPI downloads.
#
# Usage: benches/apply_vs_kubectl.sh [COUNT]
# Needs: cargo, python3, and target/tools/bin/kubectl from scripts/install-kube-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000}
kubectl=$PWD/target/tools/bin/kubectl
[[ -x $kubectl ]] || scripts/install-kube-tools.sh

cargo build --release --quiet --bin windlass
cargo build --release --quiet -p windlass-apply --example bench_apiserver
windlass=$PWD/target/release/windlass
server=$PWD/target/release/examples/bench_apiserver

mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
cleanup() {
    [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

python3 benches/generate_release.py "$work/release" "$count" "$work/known-images.yaml"
"$windlass" --state "$work/state" install --offline --known-images "$work/known-images.yaml" \
    --namespace windlass-bench --out "$work/out" --json "$work/release" >"$work/install.json"
install_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["install_id"])' "$work/install.json")
mkdir "$work/kubectl-input"
for file in "$work"/out/rendered/this-cluster/*-deployment.yaml; do
    cp "$file" "$work/kubectl-input/"
done

coproc SERVER { "$server" "$work/kubeconfig"; }
read -r ready <&"${SERVER[0]}"
[[ $ready == ready ]] || { echo "error: the test API server did not start: $ready" >&2; exit 1; }
counts() { echo counts >&"${SERVER[1]}"; local line; read -r line <&"${SERVER[0]}"; echo "$line"; }
reset_counts() { echo reset >&"${SERVER[1]}"; local line; read -r line <&"${SERVER[0]}"; }

# (`create -f`: the test API server does not speak the protobuf `create namespace` sends.)
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n' kubectl-bench windlass-bench |
    "$kubectl" --kubeconfig "$work/kubeconfig" create -f - >/dev/null

seconds() { # label, command...: runs it, prints the wall time in seconds
    local label=$1 started
    shift
    started=$EPOCHREALTIME
    "$@" >"$work/stdout" 2>"$work/stderr" || {
        echo "error: $label failed:" >&2
        tail -20 "$work/stderr" >&2
        exit 1
    }
    python3 -c "print(f'{$EPOCHREALTIME - $started:.3f}')"
}

declare -A time count_of
run() { # key, label, command...
    local key=$1 label=$2
    shift 2
    reset_counts
    time[$key]=$(seconds "$label" "$@")
    count_of[$key]=$(counts)
    printf '%-34s %8s s   requests %s\n' "$label" "${time[$key]}" "${count_of[$key]}"
}

echo "$count Deployments, rendered by windlass (install $install_id)"
run kubectl_first "kubectl apply --server-side" \
    "$kubectl" --kubeconfig "$work/kubeconfig" apply --server-side -n kubectl-bench -f "$work/kubectl-input/"
run kubectl_second "kubectl apply --server-side (again)" \
    "$kubectl" --kubeconfig "$work/kubeconfig" apply --server-side -n kubectl-bench -f "$work/kubectl-input/"
run windlass_first "windlass apply --target kube" \
    "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig"
run windlass_second "windlass apply --target kube (again)" \
    "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig"

python3 - "${time[kubectl_first]}" "${time[windlass_first]}" "${time[windlass_second]}" \
    "${time[kubectl_second]}" "${count_of[windlass_second]}" <<'PY'
import json, sys
kubectl_first, windlass_first, windlass_second, kubectl_second = map(float, sys.argv[1:5])
second = json.loads(sys.argv[5])
print(f"first apply: windlass {kubectl_first / windlass_first:.1f}x faster than kubectl (goal >= 5x)")
print(f"second apply: {second['writes']} write requests (goal 0), "
      f"{windlass_first / windlass_second:.1f}x faster than windlass's first (goal >= 10x), "
      f"{kubectl_second / windlass_second:.1f}x faster than kubectl's second")
PY
