#!/usr/bin/env bash
# Checks that the crate keeps its declared minimum Rust version (`rust-version` in
# Cargo.toml) with the one toolchain this machine has:
#
#  1. every dependency the library builds with (normal and build dependencies, all features;
#     not dev-dependencies, which only the tests and examples use) declares a rust-version
#     no newer than ours;
#  2. the library and its examples use no standard-library API stabilised after it (clippy's
#     `incompatible_msrv`, which reads rust-version from Cargo.toml).
#
# Exits 1 naming what is newer. Language features newer than the edition's floor (2024: 1.85)
# would need that toolchain to catch; the code uses none on purpose (no let chains).
set -euo pipefail
cd "$(dirname "$0")/.."

msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
[ -n "$msrv" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }
echo "==> rust-version $msrv"

echo "==> dependencies no newer than $msrv"
cargo metadata --format-version 1 --all-features --locked | python3 -c '
import json, sys
def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
msrv = version(sys.argv[1])
meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]
seen, stack = set(), [root]
while stack:
    node = stack.pop()
    if node in seen:
        continue
    seen.add(node)
    for dep in nodes[node]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            stack.append(dep["pkg"])
newer = []
for node in seen:
    p = packages[node]
    wanted = p.get("rust_version")
    if wanted and version(wanted) > msrv:
        newer.append("%s %s needs Rust %s" % (p["name"], p["version"], wanted))
if newer:
    print("msrv: dependencies newer than rust-version:", *sorted(newer), sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"    {len(seen)} packages checked")
' "$msrv"

echo "==> no standard-library API newer than $msrv (clippy incompatible_msrv)"
cargo clippy --lib --examples --all-features --locked -- -A clippy::all -D clippy::incompatible_msrv
