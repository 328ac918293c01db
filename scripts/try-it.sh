#!/usr/bin/env bash
# Try pluvo-sync without a Pluvo tenant: start pluvo-sim with the example seed, then check, plan,
# sync and read the journal for the bundled example export. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building pluvo-sync and pluvo-sim"
# --workspace: pluvo-sim is a member, not the root package, so a plain build leaves it out.
cargo build --quiet --locked --workspace --bins
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"

work="$(mktemp -d)"
"$bin/pluvo-sim" --listen 127.0.0.1:0 --seed config/sim-seed.toml >"$work/sim.out" 2>"$work/sim.log" &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$work"' EXIT

url=""
for _ in $(seq 100); do
  url="$(sed -n 's/^listening on //p' "$work/sim.out")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "pluvo-sim did not start:"; cat "$work/sim.log"; exit 1; }
echo "== pluvo-sim listening on $url"

export PLUVO_SYNC_CONFIG=config/try-it.toml
export PLUVO_SYNC__PLUVO__URL="$url"
export PLUVO_SYNC__SYNC__DATABASE="$work/pluvo-sync.db"
export PLUVO_SYNC__LOG__FORMAT=text

run() { echo; echo "\$ pluvo-sync $*"; "$bin/pluvo-sync" "$@" || echo "(exit code $?)"; }
run check
run plan
run sync
run plan
run journal runs
run journal person 000123

echo
echo "== what pluvo-sim now holds (GET $url/_sim/stats)"
python3 - "$url" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
state = json.load(urllib.request.urlopen(base + "/_sim/state"))
stats = json.load(urllib.request.urlopen(base + "/_sim/stats"))
for user in state["users"]:
    flag = "archived" if user["archived"] else "active"
    print(f'  {user.get("ref") or "-":<8} {flag:<9} {user["name"]:<24} groups: {", ".join(user["groups"])}')
print(f'  requests: {stats["requests_total"]}, invitations mailed: {stats["invitations"]}')
PY
