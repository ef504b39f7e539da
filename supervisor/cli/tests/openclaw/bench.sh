#!/usr/bin/env bash
# What running a plugin through Outpost costs an OpenClaw tool call: one gateway, in one
# run, with the same tool twice, `word_count` of the text-tools example through the
# bridge (OpenClaw -> bridge -> outpost serve -> the plugin process) and
# `word_count_in_process` of fixtures/in-process (an ordinary in-process plugin), called
# alternately with POST /tools/invoke, one call at a time; plus the same call straight
# to `outpost serve` for comparison.
#
#   supervisor/cli/tests/openclaw/bench.sh [ROUNDS]        (default 300 of each)
#
# OUTPOST_BENCH_PROFILE=release builds and runs `outpost` in release (default: debug).
# Prints the medians, p90 and p99 in milliseconds, and the machine. Exit 77 when the npm
# registry cannot be reached to install OpenClaw.
set -euo pipefail
. "$(dirname "$0")/setup.sh"

ROUNDS=${1:-300}
PROFILE=${OUTPOST_BENCH_PROFILE:-debug}
install_openclaw
build_outpost
if [ "$PROFILE" = release ] && [ "${OUTPOST_OPENCLAW_NO_BUILD:-}" != 1 ]; then
    (cd "$REPO" && cargo build --quiet --release -p outpost -p outpost-example-rust)
fi
SERVE_BIN=$REPO/target/$PROFILE/outpost

WORK=$(mktemp -d "${TMPDIR:-/tmp}/outpost-openclaw-bench.XXXXXX")
finish() {
    cleanup_processes
    rm -rf "$WORK"
}
trap finish EXIT
trap 'exit 1' INT TERM

isolate "$WORK"
API_PORT=$(free_port)
GW_PORT=$(free_port)
GW_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
HERE=$(cd "$(dirname "$0")" && pwd)
# The example plugins as plugins/outpost.json5 runs them, the Rust one from this profile.
CONFIG=$WORK/outpost.json5
cat >"$CONFIG" <<EOF
{
  plugins: {
    entries: {
      'text-tools': { enabled: true, config: { maxWords: 5000 } },
      notes: { enabled: true, config: { maxNotes: 500 } },
      clock: { enabled: true, config: { defaultTimezone: 'UTC' } },
    },
  },
  outpost: { bundledDir: '$REPO/plugins', binPath: ['$REPO/target/$PROFILE'] },
}
EOF

start SERVE "$WORK/serve.log" "$SERVE_BIN" serve --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT"
wait_ready "http://127.0.0.1:$API_PORT/readyz" 30 || { echo "outpost serve did not get ready" >&2; exit 1; }
write_openclaw_config "$OPENCLAW_CONFIG_PATH" "$GW_PORT" "$GW_TOKEN" "'in-process-bench'"
sed -i "s#load: { paths: \[\] }#load: { paths: ['$HERE/fixtures/in-process'] }#" "$OPENCLAW_CONFIG_PATH"
"$OUTPOST" openclaw link --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT" \
    --openclaw-config "$OPENCLAW_CONFIG_PATH" >/dev/null
start GATEWAY "$WORK/gateway.log" node "$OPENCLAW" gateway run
wait_ready "http://127.0.0.1:$GW_PORT/readyz" 90 || { echo "openclaw gateway did not get ready" >&2; exit 1; }
# Let the gateway's start-up work (model catalog, sidecars) settle.
sleep 10

RESULT=$(node "$HERE/measure.mjs" "http://127.0.0.1:$GW_PORT" "$GW_TOKEN" \
    "http://127.0.0.1:$API_PORT" "$(cat "$XDG_STATE_HOME/outpost/api-token-$API_PORT")" "$ROUNDS")
echo "$RESULT"
python3 - "$RESULT" "$PROFILE" <<'EOF'
import json, os, platform, sys
r = json.loads(sys.argv[1])
print(f"\n{r['rounds']} calls of each, one at a time, outpost in {sys.argv[2]}, "
      f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), node {os.popen('node --version').read().strip()}")
print(f"{'path':<48} {'median':>8} {'p90':>8} {'p99':>8}  (ms)")
for key, label in [("inProcess", "OpenClaw -> in-process plugin"),
                   ("bridged", "OpenClaw -> bridge -> outpost serve -> plugin"),
                   ("outpostApi", "outpost serve -> plugin (its API, no OpenClaw)")]:
    print(f"{label:<48} {r[key]['median']:>8.3f} {r[key]['p90']:>8.3f} {r[key]['p99']:>8.3f}")
print(f"added by running the plugin through Outpost (medians): {r['addedMedianMs']:.3f} ms")
EOF
