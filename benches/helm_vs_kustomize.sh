#!/usr/bin/env bash
# Benchmark for issue 15: a release holding one chart of $COUNT (default 500) templated
# Deployments (each with its own private image), referred to by a kots.io/v1beta1 HelmChart
# (useHelmInstall: false), on top of the quickstart's manifests and license. In the same run:
#   1. `windlass install --offline` end to end (release build): finds the archive, runs helm
#      template, probes, plans, writes base/ and the midstream and builds rendered/;
#   2. what a KOTS-style pipeline spends on the same work with the real tools: `helm template`
#      of the same chart with the same values, plus `kubectl kustomize` of the KOTS layout
#      windlass wrote (overlays/downstreams/this-cluster).
# Prints wall time and peak memory of each and the ratio windlass / (helm template + kubectl
# kustomize). windlass runs $REPEAT times (default 3) into fresh state and output directories,
# the tools $TOOLS_REPEAT times (default 3); medians are used.
#
# Usage: benches/helm_vs_kustomize.sh
# Needs: cargo, python3, /usr/bin/time (Debian package `time`), and target/tools/bin/{helm,kubectl}
# from scripts/install-kube-tools.sh. $PROFILE (default release) picks the cargo profile.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${COUNT:-500}
repeat=${REPEAT:-3}
tools_repeat=${TOOLS_REPEAT:-3}
profile=${PROFILE:-release}
kubectl=$PWD/target/tools/bin/kubectl
helm=$PWD/target/tools/bin/helm
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is missing: apt-get install -y time" >&2; exit 1; }
[[ -x $kubectl && -x $helm ]] || scripts/install-kube-tools.sh

if [[ $profile == release ]]; then
    cargo build --release --quiet --bin windlass
    windlass=$PWD/target/release/windlass
else
    cargo build --profile "$profile" --quiet --bin windlass
    windlass=$PWD/target/$profile/windlass
    [[ $profile == dev ]] && windlass=$PWD/target/debug/windlass
fi
mkdir -p "${BENCH_DIR:-target}"
work=$(mktemp -d -p "${BENCH_DIR:-target}")
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT

median() { # values...: prints the median
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

measure() { # label, command...: prints "label: <seconds> s, <peak MiB> MiB peak"
    local label=$1 seconds kilobytes started finished
    shift
    sync
    started=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" || {
        echo "error: $label failed:" >&2
        tail -20 "$work/stderr" >&2
        exit 1
    }
    finished=$EPOCHREALTIME
    seconds=$(echo "$finished - $started" | bc -l)
    read -r kilobytes <"$work/time"
    printf '%-48s %8.3f s %8.1f MiB peak\n' "$label:" "$seconds" "$(echo "$kilobytes / 1024" | bc -l)"
    echo "$seconds" >"$work/last-seconds"
}

# The release: the quickstart plus the chart and its HelmChart.
release=$work/release
cp -r examples/quickstart "$release"
mkdir -p "$release/charts" "$release/kots"
python3 - "$release/charts/bench-1.0.0.tgz" "$count" <<'EOF'
import io, sys, tarfile
path, count = sys.argv[1], int(sys.argv[2])
deployment = """{{- range $i := until (int .Values.count) }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.Release.Name }}-svc-{{ $i }}
  labels:
    app.kubernetes.io/name: svc-{{ $i }}
    app.kubernetes.io/instance: {{ $.Release.Name }}
spec:
  replicas: {{ $.Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: svc-{{ $i }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: svc-{{ $i }}
    spec:
      containers:
        - name: app
          image: "{{ $.Values.registry }}/team/svc-{{ $i }}:{{ $.Values.tag }}"
          ports:
            - containerPort: 8080
          env:
            - name: INDEX
              value: "{{ $i }}"
{{- end }}
"""
files = {
    "bench/Chart.yaml": "apiVersion: v2\nname: bench\nversion: 1.0.0\n",
    "bench/values.yaml": f"count: {count}\nreplicas: 1\nregistry: registry.vendor.example\ntag: '1.0'\n",
    "bench/templates/deployments.yaml": deployment,
}
with tarfile.open(path, "w:gz") as archive:
    for name, text in files.items():
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
EOF
cat >"$release/kots/bench-chart.yaml" <<'EOF'
apiVersion: kots.io/v1beta1
kind: HelmChart
metadata:
  name: bench
spec:
  chart:
    name: bench
    chartVersion: 1.0.0
  values:
    replicas: 2
EOF
printf 'replicas: 2\n' >"$work/values.yaml"

echo "chart of $count templated Deployments, $profile build, $(nproc) cores"
runs=()
for run in $(seq 1 "$repeat"); do
    measure "windlass install (run $run)" "$windlass" --state "$work/state-$run" install \
        --offline --helm "$helm" --out "$work/out-$run" "$release"
    runs+=("$(cat "$work/last-seconds")")
done
windlass_seconds=$(median "${runs[@]}")
rendered=$(find "$work/out-1/rendered/this-cluster" -name '*.yaml' | wc -l)
echo "windlass rendered $rendered files"

helm_runs=()
kustomize_runs=()
for run in $(seq 1 "$tools_repeat"); do
    measure "helm template (run $run)" env HELM_CACHE_HOME="$work/helm" HELM_CONFIG_HOME="$work/helm" \
        HELM_DATA_HOME="$work/helm" "$helm" template bench "$release/charts/bench-1.0.0.tgz" \
        --values "$work/values.yaml" --include-crds
    helm_runs+=("$(cat "$work/last-seconds")")
    measure "kubectl kustomize of the KOTS layout (run $run)" "$kubectl" kustomize \
        "$work/out-1/overlays/downstreams/this-cluster"
    kustomize_runs+=("$(cat "$work/last-seconds")")
done
helm_seconds=$(median "${helm_runs[@]}")
kustomize_seconds=$(median "${kustomize_runs[@]}")
tools_seconds=$(echo "$helm_seconds + $kustomize_seconds" | bc -l)
printf '%-48s %8.3f s\n' "median windlass install:" "$windlass_seconds"
printf '%-48s %8.3f s\n' "median helm template:" "$helm_seconds"
printf '%-48s %8.3f s\n' "median kubectl kustomize:" "$kustomize_seconds"
printf '%-48s %8.3f s\n' "helm template + kubectl kustomize:" "$tools_seconds"
printf '%-48s %8.2f x\n' "windlass / (helm + kustomize):" "$(echo "$windlass_seconds / $tools_seconds" | bc -l)"
