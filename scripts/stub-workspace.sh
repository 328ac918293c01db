#!/bin/sh
# Stands in an empty source file for every target the workspace's manifests name, so cargo
# accepts the manifests before the real sources are there. The Dockerfile runs it to build the
# dependencies as their own cached layer, rebuilt only when a manifest or Cargo.lock changes.
#
#   scripts/stub-workspace.sh [DIR]     # DIR holds Cargo.toml and the members' manifests
#
# Covers the src/ entry points and every [[bench]], [[test]], [[example]] and [[bin]] a manifest
# names; cargo rejects a manifest whose named targets are missing. Plain POSIX sh and awk, as
# the builder image has nothing else.
set -eu
cd "${1:-.}"

for manifest in Cargo.toml */Cargo.toml; do
    [ -f "$manifest" ] || continue
    dir=$(dirname "$manifest")
    mkdir -p "$dir/src"
    echo 'fn main() {}' > "$dir/src/main.rs"
    : > "$dir/src/lib.rs"
    awk '/^\[\[(bench|test|example|bin)\]\]/ { kind = substr($0, 3, length($0) - 4); next }
         /^\[/ { kind = "" }
         kind != "" && /^name *=/ { gsub(/[" ]/, ""); split($0, kv, "="); print kind, kv[2]; kind = "" }' \
        "$manifest" |
    while read -r kind name; do
        case "$kind" in
            bench) sub=benches ;;
            test) sub=tests ;;
            example) sub=examples ;;
            bin) sub=src/bin ;;
            *) continue ;;
        esac
        mkdir -p "$dir/$sub"
        echo 'fn main() {}' > "$dir/$sub/$name.rs"
    done
done
