#!/usr/bin/env bash
# Benchmark for issue 4: generate releases of 1,000 and 10,000 Deployments (each with an init
# container and two containers; 50 private repositories and a public sidecar), run
# `windlass install --offline --known-images ...` end to end (release build), then run the real
# `kubectl kustomize` (kustomize v5.6) on windlass's own overlays/downstreams/this-cluster for the
# same release, in the same run, and on a copy of that layout with just the images: list (no
# pull-secret patches). Prints wall time and peak memory of each, the ratios to kubectl, and the
# ratio to the floor the disk sets (creating as many small files), measured before each run.
# windlass runs $REPEAT times (default 5), each into a fresh state and output directory, and the
# median is used; kubectl runs $KUBECTL_REPEAT times (default 1), median likewise.
#
# Usage: benches/render_vs_kustomize.sh [COUNT ...]     (default: 1000 10000)
#
# On ext4, creating files right after many were deleted is several times slower: the inode
# allocator skips inodes freed in the last 60 s, or 300 s while their inode table block has not
# been written back, and scans on. Timings within five minutes of a large `rm -rf` (including the
# end of the previous run of this script, which removes its work directory) are inflated, by up
# to 4x at 1,000 Deployments; wait five minutes between runs.
# Needs: cargo, python3, /usr/bin/time (Debian package `time`), and target/tools/bin/kubectl from
# scripts/install-kube-tools.sh. kubectl is skipped for counts above $KUSTOMIZE_MAX (default 1000)
# because it takes minutes there.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1000 10000)
kustomize_max=${KUSTOMIZE_MAX:-1000}
repeat=${REPEAT:-5}
kubectl_repeat=${KUBECTL_REPEAT:-1}
kubectl=target/tools/bin/kubectl
[[ -x /usr/bin/time ]] || { echo "error: /usr/bin/time is missing: apt-get install -y time" >&2; exit 1; }
[[ -x $kubectl ]] || scripts/install-kube-tools.sh

cargo build --release --quiet
windlass=$PWD/target/release/windlass
# The work directory (releases, state, output) is made under $BENCH_DIR, target/ by default, not
# /tmp: on the machine these figures come from, a directory made directly under /tmp could land
# in a part of the filesystem where creating a file took 0.6 ms instead of 20 us, which measured
# the filesystem's allocator, not windlass (kubectl kustomize writes no files).
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
    # Earlier writes (the generated release, earlier runs) are flushed first, so that their
    # write-back does not land in the middle of the measured command.
    sync
    # Wall time from bash's microsecond clock (GNU time's %e has only 10 ms steps, too coarse at
    # 0.1 s); GNU time gives the peak memory.
    started=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" || {
        echo "error: $label failed:" >&2
        tail -20 "$work/stderr" >&2
        exit 1
    }
    finished=$EPOCHREALTIME
    seconds=$(echo "$finished - $started" | bc -l)
    read -r kilobytes <"$work/time"
    printf '%-44s %8.3f s %8.1f MiB peak\n' "$label:" "$seconds" "$(echo "$kilobytes / 1024" | bc -l)"
    echo "$seconds" >"$work/last-seconds"
}

kubectl_ratio() { # label, ratio label, output directory: kubectl kustomize on its downstream overlay
    local label=$1 ratio_label=$2 out=$3 runs=() run seconds
    for run in $(seq 1 "$kubectl_repeat"); do
        measure "$label" "$kubectl" kustomize "$out/overlays/downstreams/this-cluster"
        runs+=("$(cat "$work/last-seconds")")
    done
    seconds=$(median "${runs[@]}")
    printf '%-44s %8.1f x\n' "$ratio_label" "$(echo "$seconds / $windlass_seconds" | bc -l)"
}

for count in "${counts[@]}"; do
    release=$work/release-$count
    # The Installation used for --known-images lives outside the release.
    python3 benches/generate_release.py "$release" "$count" "$work/installation-$count.yaml"
    echo "== $count Deployments"
    # The floor the disk sets: creating as many small files as windlass writes (upstream/, base/,
    # rendered/), from one process, in this work directory. When this is slow, so is windlass.
    # It is measured before each windlass run (into a directory of its own, nothing deleted in
    # between): on the machine these figures come from, one floor measurement varied from 0.6 s
    # to 13 s at 10,000 within the hour, so a single one said more about the disk's moment than
    # about windlass. The medians of both are compared.
    runs=()
    floors=()
    for run in $(seq 1 "$repeat"); do
        sync
        python3 - "$work/floor-$count-$run" "$((3 * count))" >"$work/floor" <<'PY'
import os, sys, time
directory, count = sys.argv[1], int(sys.argv[2])
os.makedirs(directory)
body = b"x" * 700
started = time.perf_counter()
for index in range(count):
    descriptor = os.open(f"{directory}/{index}.yaml", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(descriptor, body)
    os.close(descriptor)
print(f"{time.perf_counter() - started:.3f}")
PY
        floor=$(cat "$work/floor")
        floors+=("$floor")
        printf '%-44s %8.3f s\n' "floor: creating $((3 * count)) files of 700 bytes (run $run):" "$floor"
        measure "windlass install --offline --known-images (run $run)" \
            "$windlass" --state "$work/state-$count-$run" install --offline \
            --known-images "$work/installation-$count.yaml" --out "$work/out-$count-$run" "$release"
        runs+=("$(cat "$work/last-seconds")")
    done
    floor_seconds=$(median "${floors[@]}")
    printf '%-44s %8.3f s\n' "floor median of $repeat:" "$floor_seconds"
    windlass_seconds=$(median "${runs[@]}")
    printf '%-44s %8.3f s\n' "windlass median of $repeat:" "$windlass_seconds"
    printf '%-44s %8.2f x\n' "ratio (windlass / floor):" "$(echo "$windlass_seconds / $floor_seconds" | bc -l)"
    if ((count <= kustomize_max)); then
        kubectl_ratio "kubectl kustomize overlays/downstreams/this-cluster" \
            "ratio (kubectl kustomize / windlass):" "$work/out-$count-1"
        # The same layout with just the images: list (no pull-secret patches), the lighter of the
        # two references in issue 4.
        images_only=$work/images-only-$count
        cp -r "$work/out-$count-1" "$images_only"
        sed -i '/^patches:/,$d' "$images_only/overlays/midstream/kustomization.yaml"
        if grep -q pullsecrets "$images_only/overlays/midstream/kustomization.yaml"; then
            echo "error: could not remove the patches from $images_only/overlays/midstream" >&2
            exit 1
        fi
        kubectl_ratio "kubectl kustomize, images: list only" \
            "ratio (images: list only / windlass):" "$images_only"
    else
        echo "kubectl kustomize skipped above $kustomize_max Deployments (set KUSTOMIZE_MAX to run it)"
    fi
done
