#!/usr/bin/env bash
# The OpenClaw bridge against the real OpenClaw: `outpost serve` runs the example
# plugins, `outpost openclaw link` links an isolated OpenClaw gateway to it, and every
# check below goes through OpenClaw.
#
#   supervisor/cli/tests/openclaw/run.sh
#
# Exit status: 0 all passed, 1 a check failed, 77 skipped (the npm registry cannot be
# reached to install Node 24 and OpenClaw). About 2.5 minutes on 2 cores once OpenClaw is
# in the cache (the first install adds about 30 s). Every process it starts is stopped
# at the end, whatever happens.
set -euo pipefail
. "$(dirname "$0")/setup.sh"

install_openclaw
build_outpost

WORK=$(mktemp -d "${TMPDIR:-/tmp}/outpost-openclaw.XXXXXX")
PASSED=0
finish() {
    local status=$?
    cleanup_processes
    if [ "$status" -ne 0 ] && [ "$status" -ne "$SKIPPED" ]; then
        echo "--- outpost serve (last lines)"
        tail -n 30 "$WORK/serve.log" 2>/dev/null || true
        echo "--- openclaw gateway (last lines)"
        tail -n 30 "$WORK/gateway.log" 2>/dev/null || true
        echo "$PASSED passed, 1 failed"
    fi
    if [ "${OUTPOST_OPENCLAW_KEEP:-}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap finish EXIT
trap 'exit 1' INT TERM

isolate "$WORK"
API_PORT=$(free_port)
GW_PORT=$(free_port)
GW_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
HERE=$(cd "$(dirname "$0")" && pwd)
CONFIG=$WORK/outpost.json5
API=http://127.0.0.1:$API_PORT
GW=http://127.0.0.1:$GW_PORT
TOKEN_FILE=$XDG_STATE_HOME/outpost/api-token-$API_PORT
REGISTRY_FILE=$XDG_STATE_HOME/outpost/registry-$API_PORT.json

pass() {
    PASSED=$((PASSED + 1))
    echo "ok $PASSED - $*"
}
fail() {
    echo "not ok - $*" >&2
    exit 1
}
# check DESCRIPTION PYTHON_EXPRESSION FILE: the expression over `d`, the file's JSON
# (its text when it is not JSON), and `t`, its text.
check() {
    python3 - "$3" "$2" <<'EOF' || fail "$1: $(head -c 3000 "$3")"
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.loads(text)
except ValueError:
    d = text
sys.exit(0 if eval(sys.argv[2], {"d": d, "t": text, "json": json}) else 1)
EOF
    pass "$1"
}
# invoke JSON OUT: POST /tools/invoke through OpenClaw; prints the HTTP status.
invoke() {
    curl -s -m 60 -o "$2" -w '%{http_code}' -X POST "$GW/tools/invoke" \
        -H "authorization: Bearer $GW_TOKEN" -H 'content-type: application/json' -d "$1"
}
# gw_call METHOD PARAMS OUT: `openclaw gateway call`; its status is ignored.
gw_call() {
    openclaw gateway call "$1" --params "$2" --port "$GW_PORT" --token "$GW_TOKEN" --json >"$3" 2>&1 || true
}
api_call() {
    curl -s -m 60 -H "authorization: Bearer $(cat "$TOKEN_FILE")" -H 'content-type: application/json' \
        "$API/" -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}"
}
plugin_pid() {
    python3 -c 'import json,sys; print(next(p["pid"] for p in json.load(open(sys.argv[1]))["plugins"] if p["id"] == sys.argv[2]))' "$REGISTRY_FILE" "$1"
}
metric() {
    curl -s -m 60 -H "authorization: Bearer $(cat "$TOKEN_FILE")" "$API/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
start_serve() {
    start SERVE "$WORK/serve.log" "$OUTPOST" serve --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT"
    wait_ready "$API/readyz" 30 || fail "outpost serve did not get ready"
}
# chat_reply MESSAGE KEY OUT: sends MESSAGE through chat.send, waits for the reply.
chat_reply() {
    gw_call chat.send "{\"sessionKey\":\"main\",\"message\":\"$1\",\"idempotencyKey\":\"$2\"}" "$3"
    for _ in $(seq 1 50); do
        gw_call chat.history '{"sessionKey":"main"}' "$3"
        python3 - "$3" "$2" <<'EOF' && return 0
import json, sys
history = json.load(open(sys.argv[1]))
sys.exit(0 if any(m.get("role") == "assistant" and m.get("idempotencyKey") == sys.argv[2] for m in history.get("messages", [])) else 1)
EOF
        sleep 0.4
    done
    fail "no reply to \`$1\` in chat.history: $(head -c 2000 "$3")"
}
reply_text() {
    python3 -c 'import json,sys; print(json.dumps([m for m in json.load(open(sys.argv[1]))["messages"] if m.get("idempotencyKey") == sys.argv[2]][-1]["content"]))' "$1" "$2"
}

echo "# in $WORK: outpost API on $API_PORT, OpenClaw on $GW_PORT"

# The example plugins as plugins/outpost.json5 runs them, and a fixture that calls a
# gateway method through the host (turned on while OpenClaw runs, as a plugin added later).
outpost_config() {
    cat >"$CONFIG" <<EOF
{
  plugins: {
    load: { paths: ['$HERE/fixtures/asker'] },
    entries: {
      'text-tools': { enabled: true, config: { maxWords: 5000 } },
      notes: { enabled: true, config: { maxNotes: 500 } },
      clock: { enabled: true, config: { defaultTimezone: 'UTC' } },
      asker: { enabled: $1 },
    },
  },
  outpost: {
    bundledDir: '$REPO/plugins',
    binPath: ['$REPO/target/debug'],
    defaults: { timeouts: { callMs: 10000 } },
    plugins: { asker: { hostMethods: ['health'] } },
  },
}
EOF
}
outpost_config false
link() {
    "$OUTPOST" openclaw link --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT" \
        --openclaw-config "$OPENCLAW_CONFIG_PATH" >"$WORK/link.out"
}

# --- Link ----------------------------------------------------------------------------
start_serve
pass "outpost serve runs the example plugins on 127.0.0.1:$API_PORT"
# The operator's own setting in the bridge's entry, which link must keep.
write_openclaw_config "$OPENCLAW_CONFIG_PATH" "$GW_PORT" "$GW_TOKEN" "" "outpost: { config: { offerMethods: ['health'] } },"
link
check "link keeps the config's comments and the operator's settings, and adds the bridge" \
    '"must survive" in t and "outpost-bridge" in t and "offerMethods: [\x27health\x27]" in t and "registryFile" in t' "$OPENCLAW_CONFIG_PATH"
check "the bridge's manifest lists the tools of the enabled plugins" \
    'sorted(d["contracts"]["tools"]) == ["current_time", "note_add", "note_list", "note_wait", "sleep_then_answer", "word_count"]' \
    "$WORK/outpost-bridge/openclaw.plugin.json"
cp "$OPENCLAW_CONFIG_PATH" "$WORK/linked.json5"
link
cmp -s "$WORK/linked.json5" "$OPENCLAW_CONFIG_PATH" || fail "a second link changed the config"
pass "link again changes nothing"

# --- What OpenClaw registered ----------------------------------------------------------
openclaw plugins inspect outpost --runtime --json >"$WORK/inspect.json" 2>"$WORK/inspect.err" ||
    fail "openclaw plugins inspect failed: $(tail -5 "$WORK/inspect.err")"
check "inspect: the bridge is loaded" 'd["plugin"]["status"] == "loaded"' "$WORK/inspect.json"
check "inspect: the examples' tools" \
    'set(d["plugin"]["toolNames"]) >= {"word_count", "note_add", "note_list", "note_wait", "current_time", "sleep_then_answer"}' "$WORK/inspect.json"
check "inspect: the examples' commands" 'set(d["commands"]) >= {"notes", "time", "wordcount"}' "$WORK/inspect.json"
check "inspect: the examples' gateway methods" \
    'set(d["gatewayMethods"]) >= {"clock.now", "notes.count", "text-tools.stats"}' "$WORK/inspect.json"
check "inspect: the hooks OpenClaw accepts, with their priority" \
    '{"name": "message_received", "priority": 0} in d["typedHooks"]' "$WORK/inspect.json"
check "inspect: the HTTP route and the services" \
    'd["httpRouteCount"] == 1 and set(d["services"]) >= {"text-tools-ticker", "outpost-bridge"}' "$WORK/inspect.json"
check "inspect: a registration OpenClaw refuses is its diagnostic, naming the cause" \
    'any("before_prompt_build" in x["message"] and "allowConversationAccess" in x["message"] for x in d["diagnostics"])' "$WORK/inspect.json"

# No registry file: an OpenClaw diagnostic of the plugin, not a crash.
sed "s#registry-$API_PORT.json#registry-missing.json#" "$OPENCLAW_CONFIG_PATH" >"$WORK/missing.json5"
OPENCLAW_CONFIG_PATH=$WORK/missing.json5 openclaw plugins inspect outpost --runtime --json \
    >"$WORK/inspect-missing.json" 2>/dev/null || true
check "no registry file: the plugin is in error with the reason and what to do" \
    'd["plugin"]["status"] == "error" and "no Outpost registry file" in json.dumps(d) and "outpost serve" in json.dumps(d)' \
    "$WORK/inspect-missing.json"

# --- Calls through the real gateway ----------------------------------------------------
start GATEWAY "$WORK/gateway.log" node "$OPENCLAW" gateway run
wait_ready "$GW/readyz" 90 || fail "openclaw gateway did not get ready"
pass "openclaw gateway runs with the bridge on 127.0.0.1:$GW_PORT"

status=$(invoke '{"tool":"word_count","args":{"text":"one two three"}}' "$WORK/r.json")
check "POST /tools/invoke word_count answers from the Rust plugin ($status)" \
    'd["ok"] and d["result"]["details"]["words"] == 3' "$WORK/r.json"
invoke '{"tool":"note_add","args":{"text":"buy milk"}}' "$WORK/r.json" >/dev/null
invoke '{"tool":"note_add","args":{"text":"call mum"}}' "$WORK/r.json" >/dev/null
invoke '{"tool":"note_list","args":{}}' "$WORK/r.json" >/dev/null
check "note_add twice, then note_list: the Python plugin keeps its state" \
    'd["ok"] and d["result"]["details"]["count"] == 2 and "call mum" in d["result"]["content"][0]["text"]' "$WORK/r.json"
invoke '{"tool":"current_time","args":{"timezone":"UTC"}}' "$WORK/r.json" >/dev/null
check "current_time answers from the Node plugin" 'd["ok"] and d["result"]["details"]["timezone"] == "UTC"' "$WORK/r.json"
status=$(invoke '{"tool":"note_add","args":{}}' "$WORK/r.json")
[ "$status" = 400 ] || fail "invalid arguments: HTTP $status, not 400"
check "invalid arguments: 400 with Outpost's reason" '"inputSchema" in d["error"]["message"]' "$WORK/r.json"

gw_call notes.count '{}' "$WORK/m.json"
check "openclaw gateway call notes.count" 'd["count"] == 2' "$WORK/m.json"
gw_call clock.now '{"timezone":"Europe/Paris"}' "$WORK/m.json"
check "openclaw gateway call clock.now with params" 'd["timezone"] == "Europe/Paris"' "$WORK/m.json"

curl -s -m 60 -o "$WORK/h.json" -X POST --data 'a b c d' "$GW/text-tools/count"
check "an HTTP route on the gateway's port: POST /text-tools/count" 'd["words"] == 4' "$WORK/h.json"

gw_call notes.count '{}' "$WORK/before.json"
chat_reply "/notes" c1 "$WORK/chat.json"
check "a slash command through chat.send: /notes lists the notes" \
    '"buy milk" in json.dumps([m for m in d["messages"] if m.get("idempotencyKey") == "c1"])' "$WORK/chat.json"
chat_reply "/wordcount one two" c2 "$WORK/chat.json"
reply_text "$WORK/chat.json" c2 >"$WORK/reply.json"
check "/wordcount through chat.send" '"2 words" in t' "$WORK/reply.json"
gw_call notes.count '{}' "$WORK/after.json"
seen_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messagesSeen"])' "$WORK/before.json")
check "a hook fired by OpenClaw: message_received reached the notes plugin" \
    "d['messagesSeen'] >= $seen_before + 2" "$WORK/after.json"

# Cancellation: the caller goes away, OpenClaw aborts the tool, Outpost cancels the call.
curl -s -m 3 -o /dev/null -X POST "$GW/tools/invoke" -H "authorization: Bearer $GW_TOKEN" \
    -H 'content-type: application/json' -d '{"tool":"sleep_then_answer","args":{"seconds":60}}' &
CURL=$!
sleep 1.5
inflight=$(metric 'outpost_plugin_calls_in_flight{plugin="clock"}')
[ "$inflight" = 1 ] || fail "the slow call is not in flight in the clock plugin ($inflight)"
wait "$CURL" || true
sleep 0.5
inflight=$(metric 'outpost_plugin_calls_in_flight{plugin="clock"}')
[ "$inflight" = 0 ] || fail "the aborted call is still in flight in the clock plugin ($inflight)"
pass "a caller that goes away cancels the plugin call through OpenClaw and the bridge"

# --- A plugin added while OpenClaw runs ------------------------------------------------
outpost_config true
"$OUTPOST" reload --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT" >/dev/null
for _ in $(seq 1 50); do
    grep -q 'registered tool `ask_gateway` after OpenClaw loaded the bridge' "$WORK/gateway.log" && break
    sleep 0.2
done
grep -q 'registered tool `ask_gateway` after OpenClaw loaded the bridge.*outpost openclaw link.*openclaw plugins reload outpost' "$WORK/gateway.log" ||
    fail "the bridge did not log the tool added after load"
pass "a tool added after load: the bridge logs that OpenClaw takes it at the next load, and how"
status=$(invoke '{"tool":"ask_gateway","args":{"method":"health"}}' "$WORK/r.json")
[ "$status" = 404 ] || fail "ask_gateway before the next load: HTTP $status, not 404"
pass "OpenClaw does not have it before the next load (404)"
link
check "link again: the manifest lists the new tool" '"ask_gateway" in d["contracts"]["tools"]' \
    "$WORK/outpost-bridge/openclaw.plugin.json"
openclaw plugins reload outpost --json >"$WORK/reload.json" 2>&1 || fail "openclaw plugins reload outpost: $(tail -5 "$WORK/reload.json")"
check "openclaw plugins reload outpost: no restart of OpenClaw" 't.count("\"restartRequired\": false") >= 1' "$WORK/reload.json"

# OpenClaw's own methods, offered to Outpost's plugins: asker calls `health`.
for _ in $(seq 1 25); do
    invoke '{"tool":"ask_gateway","args":{"method":"health"}}' "$WORK/r.json" >/dev/null
    grep -q '"ok":true' "$WORK/r.json" && break
    sleep 0.4
done
check "the new tool works, and calls OpenClaw's own gateway method \`health\` through the bridge" \
    'd["ok"] and d["result"]["details"]["result"]["ok"] is True' "$WORK/r.json"

# --- A plugin dies -------------------------------------------------------------------
old_pid=$(plugin_pid notes)
kill -KILL "$old_pid"
status=$(invoke '{"tool":"note_list","args":{}}' "$WORK/r.json")
check "SIGKILL of the notes plugin: the next call waits for its restart and answers (HTTP $status)" \
    'd["ok"]' "$WORK/r.json"
curl -sf -m 10 -o /dev/null "$GW/readyz" || fail "OpenClaw is not ready after a plugin died"
[ "$(plugin_pid notes)" != "$old_pid" ] || fail "the notes plugin has the same pid after SIGKILL"
pass "OpenClaw stays up; the plugin runs again with a new pid"

"$OUTPOST" plugins stop notes --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT" >/dev/null
invoke '{"tool":"note_list","args":{}}' "$WORK/r.json" >/dev/null
gw_call notes.count '{}' "$WORK/m.json"
check "a stopped plugin: a clear error naming it and its state, at once" \
    '"plugin `notes` is stopped" in t and "UNAVAILABLE" in t' "$WORK/m.json"
grep -q 'tool execution failed: .*plugin `notes` is stopped' "$WORK/gateway.log" ||
    fail "OpenClaw's log does not say why note_list failed"
pass "the tool's failure is in OpenClaw's log with Outpost's reason"
"$OUTPOST" plugins start notes --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT" >/dev/null
sleep 0.5
invoke '{"tool":"note_add","args":{"text":"back"}}' "$WORK/r.json" >/dev/null
check "after the restart, calls succeed again" 'd["ok"]' "$WORK/r.json"

# --- outpost serve dies --------------------------------------------------------------
kill -KILL "$SERVE"
sleep 0.3
status=$(invoke '{"tool":"word_count","args":{"text":"x"}}' "$WORK/r.json")
[ "$status" = 500 ] || fail "a call with serve gone: HTTP $status"
gw_call clock.now '{}' "$WORK/m.json"
check "SIGKILL of outpost serve: OpenClaw says Outpost is not reachable, naming the address" \
    "'Outpost is not reachable at $API' in t and 'UNAVAILABLE' in t" "$WORK/m.json"
curl -sf -m 10 -o /dev/null "$GW/readyz" || fail "OpenClaw is not ready after outpost serve died"
pass "OpenClaw stays up without outpost serve"
sleep 1
gw_call health '{"probe":true}' "$WORK/health.json"
check "OpenClaw's health lists the bridge's service as failing, with the reason" \
    'any("Outpost is not reachable" in e["error"] for e in d["plugins"]["errors"])' "$WORK/health.json"
start_serve
status=$(invoke '{"tool":"word_count","args":{"text":"back again"}}' "$WORK/r.json")
check "serve is back (with a new token): calls work without restarting OpenClaw" \
    'd["ok"] and d["result"]["details"]["words"] == 2' "$WORK/r.json"

# --- A wrong token ---------------------------------------------------------------------
# serve comes back with a token of its own (OUTPOST_API_TOKEN), so the token file the
# bridge reads is stale.
stop_group "$SERVE"
OUTPOST_API_TOKEN=another-token-of-32-characters-xx start SERVE "$WORK/serve.log" "$OUTPOST" serve --config "$CONFIG" --api-listen "127.0.0.1:$API_PORT"
wait_ready "$API/readyz" 30 || fail "outpost serve did not get ready"
gw_call clock.now '{}' "$WORK/m.json"
check "a wrong token: the error says Outpost refused it and which file it came from" \
    "'refused the API token from the token file $TOKEN_FILE' in t" "$WORK/m.json"
stop_group "$SERVE"
start_serve
gw_call clock.now '{}' "$WORK/m.json"
check "serve with its token file again: calls work" '"epochMs" in t' "$WORK/m.json"

# --- Unlink ----------------------------------------------------------------------------
stop_group "$GATEWAY"
"$OUTPOST" openclaw unlink --openclaw-config "$OPENCLAW_CONFIG_PATH" >/dev/null
check "unlink takes the bridge out and keeps the comments" \
    '"must survive" in t and "outpost-bridge" not in t and "registryFile" not in t' "$OPENCLAW_CONFIG_PATH"
[ ! -e "$WORK/outpost-bridge" ] || fail "unlink left the bridge directory"
pass "unlink removes the bridge directory"

echo "$PASSED passed, 0 failed"
