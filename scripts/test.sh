#!/usr/bin/env bash
# Runs windlass's whole test suite on a fresh Debian machine, installing what it needs first.
# Usage: scripts/test.sh            (from anywhere; CI runs it through .ci/run)
#
# What the tests need: cargo with rustfmt and clippy; docker-registry, htpasswd (apache2-utils),
# skopeo, strace and python3 from apt; chromium and chromium-driver from apt (the daemon's web console is
# tested in headless Chromium); kubectl 1.33 (kustomize v5.6) and helm, installed under target/tools/bin by
# scripts/install-kube-tools.sh. All are installed by this script, never assumed.
set -euo pipefail
cd "$(dirname "$0")/.."

# A one-shot build gains nothing from incremental compilation, whose caches were the largest part
# of the target directory (gigabytes on a fresh clone).
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }

need_component() {
    if ! cargo "$1" --version >/dev/null 2>&1; then
        step "installing rustup component $2"
        rustup component add "$2" || {
            echo "error: cargo $1 is missing and could not be installed: run 'rustup component add $2'" >&2
            exit 1
        }
    fi
}
need_component fmt rustfmt
need_component clippy clippy

step "format"
cargo fmt --all -- --check

step "clippy (all features, all targets)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "clippy (default features)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

# Real tools the registry and end-to-end tests drive (CNCF distribution registry, htpasswd, skopeo,
# headless Chromium and its WebDriver for the daemon's web console, tmux for what a terminal
# shows, strace for the fsyncs a new state directory's creation makes), and python3 for the
# example exec plugin (plugins/audit-label) the plugin tests run.
need_packages() {
    local missing=() tool package
    for pair in docker-registry:docker-registry htpasswd:apache2-utils skopeo:skopeo python3:python3 \
        chromium:chromium chromedriver:chromium-driver tmux:tmux strace:strace; do
        tool=${pair%%:*}
        package=${pair#*:}
        command -v "$tool" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        step "installing ${missing[*]}"
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y "${missing[@]}"; } || {
            echo "error: could not install ${missing[*]}: run 'apt-get install -y ${missing[*]}'" >&2
            exit 1
        }
    fi
}
need_packages

# kubectl 1.33 (kustomize v5.6) and helm into target/tools/bin/, the oracles of the kustomize/helm tests.
scripts/install-kube-tools.sh

step "tests (all features: redb and sled backends)"
cargo test --workspace --all-features --locked

step "benches compile"
cargo bench --workspace --no-run --locked

step "README main command on the bundled example"
state_dir=$(mktemp -d)
trap 'rm -rf "$state_dir"' EXIT
cargo run --quiet --locked -- --state "$state_dir" install examples/quickstart
cargo run --quiet --locked -- --state "$state_dir" verify-log

step "all checks passed"
