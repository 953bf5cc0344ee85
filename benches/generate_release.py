#!/usr/bin/env python3
"""Writes a generated KOTS-style release for the benches: COUNT Deployments (an init container and
two containers each; 50 private repositories and a public sidecar), a license under userdata/, and
the Installation for --known-images at KNOWN_IMAGES (outside the release).

With a fourth argument `templated`, each Deployment makes five KOTS template calls (four
`ConfigOption`, one `LicenseFieldValue`) that render to what `plain` writes literally; both forms
get the same Config (`config.yaml`), so the two releases differ only in templating.

Usage: benches/generate_release.py RELEASE_DIR COUNT KNOWN_IMAGES [plain|templated]
"""
import os
import sys

release, count, known_images = sys.argv[1], int(sys.argv[2]), sys.argv[3]
form = sys.argv[4] if len(sys.argv) > 4 else None
if form not in (None, "plain", "templated"):
    sys.exit(f"unknown form {form!r}: use plain or templated")
os.makedirs(f"{release}/manifests", exist_ok=True)
os.makedirs(f"{release}/userdata", exist_ok=True)
with open(f"{release}/userdata/license.yaml", "w") as f:
    f.write("apiVersion: kots.io/v1beta1\nkind: License\nmetadata:\n  name: bench\nspec:\n"
            "  appSlug: bench-app\n  licenseID: bench-license-id\n  licenseSequence: 1\n")
known = []
for repo in range(50):
    known.append((f"quay.io/vendor/service-{repo}:1.0", True))
    known.append((f"quay.io/vendor/init-{repo}:1.0", True))
known.append(("nginx:1.25", False))
with open(known_images, "w") as f:
    f.write("apiVersion: kots.io/v1beta1\nkind: Installation\nmetadata:\n  name: bench\nspec:\n  knownImages:\n")
    for image, private in known:
        f.write(f"    - image: {image}\n      isPrivate: {'true' if private else 'false'}\n")
if form is not None:
    with open(f"{release}/config.yaml", "w") as f:
        f.write("""apiVersion: kots.io/v1beta1
kind: Config
metadata:
  name: bench
spec:
  groups:
    - name: settings
      items:
        - name: tier
          type: text
          default: backend
        - name: replicas
          type: text
          default: "2"
        - name: version
          type: text
          default: "1.0"
""")
for index in range(count):
    repo = index % 50
    if form is not None:
        if form == "templated":
            tier, slug, replicas = 'repl{{ ConfigOption "tier" }}', '{{repl LicenseFieldValue "appSlug" }}', 'repl{{ ConfigOption "replicas" }}'
            init_tag, main_tag = 'repl{{ ConfigOption "version" }}', '{{repl ConfigOption "version" }}'
        else:
            tier, slug, replicas, init_tag, main_tag = "backend", "bench-app", "2", "1.0", "1.0"
        with open(f"{release}/manifests/deployment-{index}.yaml", "w") as f:
            f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{index}
  labels:
    tier: '{tier}'
  annotations:
    customer: '{slug}'
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app-{index}
  template:
    metadata:
      labels:
        app: app-{index}
    spec:
      initContainers:
        - name: init
          image: 'quay.io/vendor/init-{repo}:{init_tag}'
      containers:
        - name: main
          image: 'quay.io/vendor/service-{repo}:{main_tag}'
        - name: sidecar
          image: nginx:1.25
""")
        continue
    with open(f"{release}/manifests/deployment-{index}.yaml", "w") as f:
        f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{index}
spec:
  selector:
    matchLabels:
      app: app-{index}
  template:
    metadata:
      labels:
        app: app-{index}
    spec:
      initContainers:
        - name: init
          image: quay.io/vendor/init-{repo}:1.0
      containers:
        - name: main
          image: quay.io/vendor/service-{repo}:1.0
        - name: sidecar
          image: nginx:1.25
""")
