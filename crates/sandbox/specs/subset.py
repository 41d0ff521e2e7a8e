#!/usr/bin/env python3
"""Cuts a vendor's OpenAPI document down to some operations and every schema they reference.

usage: subset.py FULL.json OUT.json "METHOD /path" ...

Paths and schemas are copied verbatim; descriptions, examples and x-* documentation
extensions are dropped to keep the file small. `x-source` records where it came from.
"""
import json
import sys

DROP = {"description", "example", "examples", "summary", "externalDocs"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items()
                if k not in DROP and not k.startswith("x-")}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    full_path, out_path, *ops = sys.argv[1:]
    full = json.load(open(full_path))
    paths = {}
    for op in ops:
        method, path = op.split(" ", 1)
        paths.setdefault(path, {})[method.lower()] = full["paths"][path][method.lower()]
    schemas = full["components"]["schemas"]
    wanted, todo = set(), set()
    refs(paths, todo)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        refs(schemas[name], todo)
    out = {
        "openapi": full["openapi"],
        "info": {k: full["info"][k] for k in ("title", "version") if k in full["info"]},
        "x-source": full.get("x-source-note", {}),
        "paths": strip(paths),
        "components": {"schemas": {n: strip(schemas[n]) for n in sorted(wanted)}},
    }
    json.dump(out, open(out_path, "w"), indent=1, sort_keys=True)
    print(f"{out_path}: {len(paths)} paths, {len(wanted)} schemas")


if __name__ == "__main__":
    main()
