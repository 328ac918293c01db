#!/usr/bin/env bash
# Builds pluvo-sync's container image and runs it for real against pluvo-sim (also from the
# Dockerfile), laid out as the README's container section says: the config at
# /config/pluvo-sync.toml, secrets as files in /run/secrets, the HR export in /import, the
# database in a /data volume. Checks that it runs as non-root, that the HEALTHCHECK survived the
# build and passes, that a triggered sync converges, and that SIGTERM during a run stops it
# cleanly (exit 0, the run journaled `aborted`); prints the image size. Leaves no container,
# volume or file behind; the images stay, tagged :smoke, so a second run reuses their layers.
#
#   scripts/container-smoke.sh            # podman (installed if missing, see below)
#
# Needs root for podman's default (rootful) storage, where local-base-images.sh puts its images.
# Where podman is missing or no registry answers, it runs local-base-images.sh (found beside the
# repository in shared/container/, or at $LOCAL_BASE_IMAGES), which installs podman and builds
# local stand-ins for debian:bookworm-slim and rust:<ver>-slim-bookworm. Both containers use the
# host's network on loopback ports, which works wherever podman runs, bridge or not.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)

rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
base_images="${LOCAL_BASE_IMAGES:-}"
if [ -z "$base_images" ]; then
  for candidate in ../shared/container/local-base-images.sh ../../shared/container/local-base-images.sh; do
    [ -x "$candidate" ] && base_images="$candidate" && break
  done
fi
if [ -n "$base_images" ]; then
  say "base images (rust $rust_version) via $base_images"
  "$base_images" "$rust_version"
elif ! command -v podman >/dev/null; then
  fail "podman is not installed and local-base-images.sh was not found (set LOCAL_BASE_IMAGES)"
fi

say "building the images (podman build --format docker keeps the HEALTHCHECK)"
build_started=$(date +%s)
podman build --quiet --format docker -t pluvo-sync:smoke . >/dev/null
podman build --quiet --format docker --target sim -t pluvo-sim:smoke . >/dev/null
echo "built in $(( $(date +%s) - build_started )) s"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
app_port=$(free_port)
sim="http://127.0.0.1:$sim_port"
app="http://127.0.0.1:$app_port"
token="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
name="pluvo-sync-smoke-$$"
volume="$name-data"
work=$(mktemp -d)
cleanup() {
  podman rm -f -t 0 "$name" "$name-sim" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# GET or POST with python3 (the host may lack curl): prints "<status> <body>".
http() {
  python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
headers = {"Authorization": "Bearer " + sys.argv[3]} if len(sys.argv) > 3 else {}
data = b"{}" if method == "POST" else None
if data is not None:
    headers["Content-Type"] = "application/json"
request = urllib.request.Request(url, data=data, headers=headers, method=method)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
except OSError as error:
    print(0, error)
PY
}
json() { python3 -c "import json, sys; d = json.loads(sys.stdin.read().split(' ', 1)[1]); print($1)"; }
wait_for() { # what, seconds, command...
  local what=$1 limit=$2; shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  fail "$what within $limit s"
}
latest_finished() { [ "$(http GET "$app/v1/runs/latest" | json 'd.get("finished_at") is not None')" = True ]; }

say "the layout of the README: config, secrets, export"
mkdir -p "$work/config" "$work/secrets" "$work/import"
sed -e 's|^path = .*|path = "/import/export.csv"|' config/compose.toml >"$work/config/pluvo-sync.toml"
cat >>"$work/config/pluvo-sync.toml" <<EOF

# For the smoke test: secrets from files, as in production.
[service]
shutdown_grace_secs = 5
EOF
cp config/example-export.csv "$work/import/export.csv"
printf '%s' sim-secret >"$work/secrets/pluvo_client_secret"
printf '%s' "$token" >"$work/secrets/pluvo_sync_trigger_token"
# Readable by the container's user only, as the README says.
chown -R 10001:10001 "$work/secrets"
chmod 0500 "$work/secrets"
chmod 0400 "$work/secrets"/*

say "starting pluvo-sim on $sim"
podman run -d --name "$name-sim" --network host -v "$PWD/config:/config:ro" pluvo-sim:smoke \
  --listen "127.0.0.1:$sim_port" --seed /config/sim-seed.toml >/dev/null
sim_up() { [ "$(http GET "$sim/_sim/stats" | cut -d' ' -f1)" = 200 ]; }
wait_for "pluvo-sim answers" 60 sim_up

say "starting pluvo-sync (syncs once on start) with its admin listener on $app"
podman run -d --name "$name" --network host \
  -v "$volume:/data" -v "$work/config:/config:ro" -v "$work/secrets:/run/secrets:ro" \
  -v "$work/import:/import:ro" \
  -e PLUVO_SYNC__PLUVO__URL="$sim" \
  -e PLUVO_SYNC__PLUVO__CLIENT_SECRET_FILE=/run/secrets/pluvo_client_secret \
  -e PLUVO_SYNC__SERVER__TRIGGER_TOKEN_FILE=/run/secrets/pluvo_sync_trigger_token \
  -e PLUVO_SYNC__SERVER__LISTEN="127.0.0.1:$app_port" \
  pluvo-sync:smoke >/dev/null

uid=$(podman exec "$name" id -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid, not 10001"
echo "runs as uid $uid ($(podman image inspect --format '{{.Config.User}}' pluvo-sync:smoke))"

healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' pluvo-sync:smoke)
case "$healthcheck" in *healthcheck*) ;; *) fail "the image has no HEALTHCHECK: $healthcheck" ;; esac
wait_for "the healthcheck passes" 60 podman healthcheck run "$name"
echo "healthcheck passes: $healthcheck"

wait_for "the sync on start finishes" 120 latest_finished
first=$(http GET "$app/v1/runs/latest")
echo "sync on start: $(echo "$first" | json '(d["status"], "ops ok", d["ops_ok"], "failed", d["ops_failed"])')"
[ "$(echo "$first" | json 'd["status"]')" = ok ] || fail "the sync on start: $first"

say "a triggered sync converges: nothing left to change"
response=$(http POST "$app/v1/sync")
[ "${response%% *}" = 401 ] || fail "a trigger without the token was not refused: $response"
response=$(http POST "$app/v1/sync" "$token")
[ "${response%% *}" = 202 ] || fail "trigger: $response"
run_id=$(echo "$response" | json 'd["run_id"]')
triggered_finished() { [ "$(http GET "$app/v1/runs/latest" | json "d['id'] == '$run_id' and d['finished_at'] is not None")" = True ]; }
wait_for "the triggered run finishes" 60 triggered_finished
second=$(http GET "$app/v1/runs/latest")
echo "triggered sync: $(echo "$second" | json '(d["status"], "ops planned", d["ops_planned"])')"
[ "$(echo "$second" | json 'd["status"] == "ok" and d["ops_planned"] == 0')" = True ] ||
  fail "the triggered sync did not converge: $second"
state=$(http GET "$sim/_sim/state")
echo "pluvo-sim holds $(echo "$state" | json 'len(d["users"])') users; $(http GET "$sim/_sim/stats" | json '"invitations mailed: %d" % d["invitations"]')"

say "SIGTERM during a run stops it cleanly"
# A move to another department gives the run a user update, a custom field and two group
# changes to send, one after the other, and a slow Pluvo keeps the first in flight.
sed -i 's/^000123;Lotte;de;Vries;lotte.devries@example.com;Sales;/000123;Charlotte;de;Vries;lotte.devries@example.com;Engineering;/' \
  "$work/import/export.csv"
grep -q '^000123;Charlotte;' "$work/import/export.csv" || fail "could not edit the export"
python3 -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('$sim/_sim/faults', data=b'{\"latency_ms\": 3000}', headers={'Content-Type': 'application/json'}, method='POST'))"
response=$(http POST "$app/v1/sync" "$token")
[ "${response%% *}" = 202 ] || fail "trigger: $response"
sleep 1
podman stop -t 30 "$name" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM; logs: $(podman logs --tail 20 "$name" 2>&1)"
echo "exit code after SIGTERM: $code"
journal=$(podman run --rm --network host -v "$volume:/data" -v "$work/config:/config:ro" \
  -e PLUVO_SYNC__PLUVO__CLIENT_SECRET=unused pluvo-sync:smoke journal runs --json)
echo "journal: $(echo "0 $journal" | json '", ".join(r["status"] for r in d[:3])') (latest first)"
[ "$(echo "0 $journal" | json 'd[0]["status"]')" = aborted ] || fail "the interrupted run is not journaled aborted: $journal"

say "image size"
podman image inspect --format '{{.Size}}' pluvo-sync:smoke |
  python3 -c 'import sys; print("pluvo-sync:smoke %.1f MB" % (int(sys.stdin.read()) / 1e6))'
echo "container smoke test passed in $(( $(date +%s) - started )) s"
