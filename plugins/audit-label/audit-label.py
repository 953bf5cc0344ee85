#!/usr/bin/env python3
"""audit-label: a KRM function (config.kubernetes.io/v1 ResourceList on stdin and stdout) that
labels every object with the team that audited it.

The team comes from the functionConfig: `spec.team` (windlass wraps a plugin's `config:` as the
`spec` of a PluginConfig) or `data.team` (a ConfigMap, as `kustomize fn` users write it). The
label key is `audit.example.com/team` unless `label` names another one. It reports one `info`
result, and an `error` result (which fails the stage) when no team is configured.

windlass sends JSON (which is YAML); kustomize sends YAML, read with PyYAML when it is installed.
"""

import json
import sys


def read_resource_list(text):
    try:
        return json.loads(text)
    except ValueError:
        import yaml  # only needed when run by kustomize, which sends YAML

        return yaml.safe_load(text)


def main():
    resource_list = read_resource_list(sys.stdin.read())
    config = resource_list.get("functionConfig") or {}
    settings = config.get("spec") or config.get("data") or {}
    team = settings.get("team")
    label = settings.get("label", "audit.example.com/team")
    items = resource_list.get("items") or []
    results = []
    if not team:
        results.append({"severity": "error", "message": "no team configured (config: {team: ...})"})
    else:
        for item in items:
            metadata = item.setdefault("metadata", {})
            labels = metadata.get("labels") or {}
            labels[label] = str(team)
            metadata["labels"] = labels
        results.append({"severity": "info", "message": f"labelled {len(items)} objects {label}={team}"})
    json.dump(
        {
            "apiVersion": "config.kubernetes.io/v1",
            "kind": "ResourceList",
            "items": items,
            "results": results,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
