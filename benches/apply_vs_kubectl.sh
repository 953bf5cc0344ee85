#!/usr/bin/env bash
# Benchmark for issue 13: render a generated release of COUNT Deployments (default 1,000) with
# `windlass install --offline`, then, ROUNDS times (default 5), against ONE fresh test API server
# per round (`apply/examples/bench_apiserver.rs`: the workspace's FAKE Kubernetes API server,
# since no real API server can run on these machines; it counts every request it serves) and a
# fresh copy of the state as the install left it:
#   - the real `kubectl apply --server-side -f <copy of rendered/this-cluster/>` (kubectl 1.33),
#     then the same command again (nothing changed);
#   - `windlass apply <install> --target kube` (release build), then the same command again (the
#     unchanged apply: checked to have taken the recorded-digest path and written nothing);
#   - `windlass install` of the same release again with `--target kube` (it renders again, so the
#     unchanged check parses every file and compares it with the cluster: the other way a user
#     applies an unchanged release);
#   - removing it all: `kubectl delete --wait=false -f <the same files>` against
#     `windlass undeploy <install> --target kube` (both checked to leave no Deployment).
# The two tools take turns going first. Both apply the same objects: the Deployments and the
# pull secret, kubectl into namespace kubectl-bench (the secret's copy renamed into it), windlass
# into windlass-bench (the install's --namespace). Prints each round's wall times and request
# counts (total, writes, dry runs, by verb), then the medians and the ratios of the medians.
# windlass's figures include its process start and the event log; kubectl's include its
# discovery requests (its cache directory is the run's own, warmed by the untimed namespace
# creation of each round, as a user's would be).
#
# With GROW=N set, it then applies N more unchanged applies to a fresh state and server (the log
# grows by each one's records) and times 5 more: what an unchanged apply costs in a grown log.
#
# Usage: [GROW=N] benches/apply_vs_kubectl.sh [COUNT] [ROUNDS]
# Needs: cargo, python3, and target/tools/bin/kubectl from scripts/install-kube-tools.sh.
set -euo pipefail
shopt -s inherit_errexit
export LC_ALL=C
unset RUST_LOG
cd "$(dirname "$0")/.."

count=${1:-1000}
rounds=${2:-5}
kubectl=$PWD/target/tools/bin/kubectl
[[ -x $kubectl ]] || scripts/install-kube-tools.sh

cargo build --release --quiet --bin windlass
cargo build --release --quiet -p windlass-apply --example bench_apiserver
windlass=$PWD/target/release/windlass
server=$PWD/target/release/examples/bench_apiserver

mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
export KUBECACHEDIR=$work/kube-cache
cleanup() {
    [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

python3 benches/generate_release.py "$work/release" "$count" "$work/known-images.yaml"
install_args=(install --offline --known-images "$work/known-images.yaml" --namespace windlass-bench)
"$windlass" --state "$work/state-installed" "${install_args[@]}" --out "$work/out" --json \
    "$work/release" >"$work/install.json"
install_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["install_id"])' "$work/install.json")
mkdir "$work/kubectl-input"
cp "$work"/out/rendered/this-cluster/*-deployment.yaml "$work/kubectl-input/"
secrets=("$work"/out/rendered/this-cluster/*-secret.yaml)
[[ ${#secrets[@]} == 1 && -f ${secrets[0]} ]] || { echo "error: expected one rendered pull secret" >&2; exit 1; }
sed 's/^  namespace: windlass-bench$/  namespace: kubectl-bench/' "${secrets[0]}" >"$work/kubectl-input/pull-secret.yaml"
grep -q 'namespace: kubectl-bench' "$work/kubectl-input/pull-secret.yaml" ||
    { echo "error: the pull secret's copy names no kubectl-bench namespace" >&2; exit 1; }
objects=$(find "$work/kubectl-input" -name '*.yaml' | wc -l)

start_server() {
    coproc SERVER { "$server" "$work/kubeconfig"; }
    local ready
    read -r ready <&"${SERVER[0]}"
    [[ $ready == ready ]] || { echo "error: the test API server did not start: $ready" >&2; exit 1; }
    # (`create -f`: the test API server does not speak the protobuf `create namespace` sends.)
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n' kubectl-bench windlass-bench |
        "$kubectl" --kubeconfig "$work/kubeconfig" create -f - >/dev/null
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
ask_server() { # command: its one-line answer
    local line
    echo "$1" >&"${SERVER[1]}"
    read -r line <&"${SERVER[0]}"
    [[ -n $line ]] || { echo "error: the test API server did not answer '$1'" >&2; exit 1; }
    echo "$line"
}

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

declare -A times counts_of
run() { # key, label, command...: timed, with the requests it made
    local key=$1 label=$2 took requests
    shift 2
    ask_server reset >/dev/null
    took=$(seconds "$label" "$@")
    requests=$(ask_server counts)
    times[$key]+="$took "
    counts_of[$key]=$requests
    printf '  %-40s %8s s   requests %s\n' "$label" "$took" "$requests"
}

kubectl_runs() {
    run kubectl_first "kubectl apply --server-side" \
        "$kubectl" --kubeconfig "$work/kubeconfig" apply --server-side -n kubectl-bench -f "$work/kubectl-input/"
    run kubectl_second "kubectl apply --server-side (again)" \
        "$kubectl" --kubeconfig "$work/kubeconfig" apply --server-side -n kubectl-bench -f "$work/kubectl-input/"
    run kubectl_delete "kubectl delete" \
        "$kubectl" --kubeconfig "$work/kubeconfig" delete --wait=false -n kubectl-bench -f "$work/kubectl-input/"
    no_deployments_left kubectl-bench
}
no_deployments_left() { # namespace
    local left
    left=$("$kubectl" --kubeconfig "$work/kubeconfig" get deployments -n "$1" -o name | wc -l)
    ((left == 0)) || { echo "error: $left Deployments left in $1 after the delete" >&2; exit 1; }
}
windlass_runs() { # round
    run windlass_first "windlass apply --target kube" \
        "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig"
    run windlass_second "windlass apply --target kube (again)" \
        "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig"
    # The unchanged apply must have compared recorded digests and written nothing.
    grep -q "0 created, 0 configured, $objects unchanged" "$work/stdout" &&
        grep -q "compared by recorded digest, nothing parsed" "$work/stdout" || {
        echo "error: the second windlass apply did not take the unchanged path:" >&2
        cat "$work/stdout" >&2
        exit 1
    }
    python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["writes"] != 0)' "${counts_of[windlass_second]}" ||
        { echo "error: the unchanged apply wrote" >&2; exit 1; }
    run windlass_install_again "windlass install (renders again)" \
        "$windlass" --state "$work/state" "${install_args[@]}" --out "$work/out-again-$1" \
        --target kube --kubeconfig "$work/kubeconfig" "$work/release"
    grep -q "0 created, 0 configured, $objects unchanged" "$work/stdout" || {
        echo "error: installing the unchanged release again changed something:" >&2
        cat "$work/stdout" >&2
        exit 1
    }
    run windlass_undeploy "windlass undeploy" \
        "$windlass" --state "$work/state" undeploy "$install_id" --target kube --kubeconfig "$work/kubeconfig"
    grep -q "$objects deleted, 0 left" "$work/stdout" || {
        echo "error: the undeploy did not delete every object:" >&2
        cat "$work/stdout" >&2
        exit 1
    }
    no_deployments_left windlass-bench
}

echo "$count Deployments and a pull secret ($objects objects), rendered by windlass (install $install_id); $rounds rounds"
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    rm -rf "$work/state" "$work/out-again-$round"
    cp -a "$work/state-installed" "$work/state"
    start_server
    if ((round % 2)); then
        kubectl_runs
        windlass_runs "$round"
    else
        windlass_runs "$round"
        kubectl_runs
    fi
    stop_server
done

python3 - "${times[kubectl_first]}" "${times[kubectl_second]}" "${times[windlass_first]}" \
    "${times[windlass_second]}" "${times[windlass_install_again]}" "${times[kubectl_delete]}" \
    "${times[windlass_undeploy]}" "${counts_of[windlass_second]}" <<'PY'
import json, statistics, sys
(kubectl_first, kubectl_second, windlass_first, windlass_second, install_again, kubectl_delete,
 undeploy) = (statistics.median(map(float, runs.split())) for runs in sys.argv[1:8])
second = json.loads(sys.argv[8])
print(f"medians: kubectl {kubectl_first:.3f} s, again {kubectl_second:.3f} s; windlass "
      f"{windlass_first:.3f} s, again {windlass_second:.3f} s, install again {install_again:.3f} s")
print(f"first apply: windlass {kubectl_first / windlass_first:.1f}x faster than kubectl (goal >= 5x)")
print(f"second apply: {second['writes']} write requests (goal 0), {second['total']} requests, "
      f"{windlass_first / windlass_second:.1f}x faster than windlass's first (goal >= 10x), "
      f"{kubectl_second / windlass_second:.1f}x faster than kubectl's second")
print(f"removing it all: windlass undeploy {undeploy:.3f} s, kubectl delete {kubectl_delete:.3f} s: "
      f"{kubectl_delete / undeploy:.1f}x")
PY

grow=${GROW:-0}
if ((grow > 0)); then
    rm -rf "$work/state"
    cp -a "$work/state-installed" "$work/state"
    start_server
    for _ in $(seq 0 "$grow"); do
        "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig" >/dev/null
    done
    grown=()
    for _ in 1 2 3 4 5; do
        grown+=("$(seconds "unchanged apply in a grown log" \
            "$windlass" --state "$work/state" apply "$install_id" --target kube --kubeconfig "$work/kubeconfig")")
    done
    stop_server
    log_size=$(du -h "$work/state/events.redb" | cut -f1)
    python3 -c 'import statistics, sys; runs = " ".join(sys.argv[3:]); print(f"after {sys.argv[1]} unchanged applies (log {sys.argv[2]}): unchanged apply median {statistics.median(map(float, sys.argv[3:])):.3f} s (runs {runs})")' \
        "$grow" "$log_size" "${grown[@]}"
fi
