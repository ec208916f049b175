"""Extract the openAPIV3Schema of each version of CustomResourceDefinitions into JSON files named
like kubeconform's schema catalogue ({kind}_{version}.json, lower case), for offline validation in
tests/deploy. Strict, as kubeconform's own openapi2jsonschema makes them: every object that lists
its properties, and does not preserve unknown fields, refuses others (the API server would prune
them silently). Usage:

    git -C <strimzi checkout> show 1.2.0:packaging/install/cluster-operator/040-Crd-kafka.yaml > kafka.yaml
    python tools/crd_schemas.py tests/deploy/fixtures/crds kafka.yaml [more CRD files...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get(
                "x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def main(out_dir: str, *crd_files: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in crd_files:
        for crd in yaml.safe_load_all(Path(name).read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            kind = crd["spec"]["names"]["kind"].lower()
            for version in crd["spec"]["versions"]:
                target = out / f"{kind}_{version['name']}.json"
                schema = strict(version["schema"]["openAPIV3Schema"])
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(target)


if __name__ == "__main__":
    main(*sys.argv[1:])
