#!/usr/bin/env python3
"""notes: an Outpost plugin in Python, standard library only.

Keeps short notes in memory and offers them to the agent and to chat users:

- tools `note_add`, `note_list` and `note_wait` (a long poll that honours `$/cancel`);
- a hook on `message_received` that counts incoming messages;
- a `/notes` command (`/notes`, `/notes add TEXT`, `/notes clear`, `/notes config`);
- a gateway method `notes.count`.

It speaks the Outpost plugin protocol (docs/protocol.md) directly, without an SDK: one
JSON-RPC 2.0 message per line on stdin/stdout. The file has three parts: the transport
(reading and writing lines), the session (lifecycle, dispatch, cancellation, calls to
the host) and the plugin itself (registrations and handlers). See README.md for the
design notes.
"""

import json
import os
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

PLUGIN_ID = "notes"
PLUGIN_NAME = "Notes"
PLUGIN_VERSION = "0.1.0"

SUPPORTED_VERSIONS = ["1"]
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT_MS = 3000
HOST_CALL_TIMEOUT_S = 10.0
EX_USAGE = 2
EX_CONFIG = 78

# Error codes (docs/protocol.md, section 11).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HANDLER_FAILED = -32000
TIMEOUT = -32001
NOT_INITIALIZED = -32002
UNAVAILABLE = -32003
UNSUPPORTED_VERSION = -32004
MESSAGE_TOO_LARGE = -32006
ALREADY_INITIALIZED = -32007
NOT_FOUND = -32008
OVERLOADED = -32009
CANCELLED = -32800

HINT = """\
This is an Outpost plugin: it speaks JSON-RPC on stdin/stdout and is started by a host.
Run it under the supervisor (add this directory to plugins.load.paths and run
`outpost serve`), or check it with `outpost-conformance run --plugin-dir DIR`.
"""


class RpcError(Exception):
    """An error answer: raised by handlers, turned into a JSON-RPC error response."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class Cancelled(Exception):
    """The host cancelled the call (`$/cancel`), or the session is ending."""


def invalid_params(path, message):
    return RpcError(INVALID_PARAMS, f"invalid params: {path}: {message}",
                    {"errors": [{"path": path, "message": message}]})


# --------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------

class Writer:
    """Writes whole messages to the protocol stream: one line, one write, one flush.

    Handlers run on several threads, so a lock keeps lines from interleaving.
    """

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self.limit = DEFAULT_MAX_MESSAGE_BYTES
        self.closed = False

    def encode(self, message):
        # Compact, ASCII-only output: never a raw newline, always valid UTF-8, and the
        # fastest path of the json module's C encoder.
        return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"

    def send(self, message):
        self.write(self.encode(message))

    def write(self, line):
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except OSError:
                # The host closed our stdout: it is gone. The reader sees EOF next.
                self.closed = True


def protocol_stdout():
    """Takes fd 1 for the protocol and points everything else at stderr.

    A stray `print()` (ours or a library's) would otherwise corrupt the stream; now it
    lands in stderr, which the host shows in its log.
    """
    stream = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def read_lines(stream, get_limit):
    """Yields (line_number, body) for each line, or (line_number, size) for a line over
    the limit, which is skipped without being held in memory.

    `body` has its newline, a trailing CR and a leading UTF-8 byte-order mark removed.
    Stops at EOF.
    """
    number = 0
    while True:
        limit = get_limit()
        # Room for the limit plus "\r\n": a longer read means the line is too long.
        line = stream.readline(limit + 2)
        if not line:
            return
        number += 1
        if not line.endswith(b"\n") and len(line) == limit + 2:
            size = len(line)
            while True:
                chunk = stream.readline(1 << 16)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield number, size - 1
            continue
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if len(line) > limit:
            yield number, len(line)
            continue
        yield number, line


def reject_constant(name):
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{name} is not JSON")


def parse_json(text):
    return json.loads(text, parse_constant=reject_constant)


def id_text(value):
    """The JSON text of a request id; None for a value that is not an id.

    Ids compare by JSON type and value (docs/protocol.md, section 4): 7 and 7.0 are one
    id, "7" another. So a number with an integral value is written as an integer: the
    text is both what the response carries and a dictionary key that keeps ids apart.
    """
    kind = type(value)
    if kind is str:
        return json.dumps(value)
    if kind is int:
        return str(value)
    if kind is float:
        return str(int(value)) if value.is_integer() else json.dumps(value)
    return None


NULL_ID = "null"


# --------------------------------------------------------------------------------------
# Session: lifecycle, dispatch, cancellation, calls to the host
# --------------------------------------------------------------------------------------

class Call:
    """A request being served off the reader thread."""

    __slots__ = ("id", "cancelled", "context")

    def __init__(self, request_id, context):
        self.id = request_id  # its JSON text
        self.cancelled = False
        self.context = context

    def check(self):
        """Raises `Cancelled` if the host no longer wants the answer."""
        if self.cancelled:
            raise Cancelled()

    def budget(self, default):
        """How long this call may wait, in seconds: `default`, or less so as to answer
        before the caller's deadline (`context.timeoutMs`) passes."""
        timeout_ms = self.context.get("timeoutMs")
        if type(timeout_ms) is int and timeout_ms >= 0:
            return min(default, timeout_ms * 0.9 / 1000)
        return default


class Session:
    def __init__(self, writer, plugin):
        self.writer = writer
        self.plugin = plugin
        # One lock guards all shared state; `changed` wakes anything waiting on it
        # (cancellations, answers from the host, new notes, shutdown).
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.initialized = False
        self.ready = False  # after the host's `initialized` notification
        self.stopping = False  # after `shutdown`
        self.eof = False
        self.limits = {}
        self.runtime = ()
        self.inflight = {}  # id text -> Call, for calls on the pool
        self.host_replies = {}  # our request id -> None while waiting, then the message
        self.next_host_id = 1
        self.max_inflight = 16
        self.pool = None
        self.shutdown_thread = None

    # Outgoing messages ----------------------------------------------------------------

    def notify(self, method, params):
        self.writer.send({"jsonrpc": "2.0", "method": method, "params": params})

    def log(self, level, message, **fields):
        params = {"level": level, "message": message}
        if fields:
            params["fields"] = fields
        self.notify("log", params)

    # Responses are written as text around the id's JSON text, so that the id goes back
    # exactly as it came.

    def reply(self, request_id, result):
        try:
            line = (f'{{"jsonrpc":"2.0","id":{request_id},"result":'
                    f'{json.dumps(result, separators=(",", ":"), allow_nan=False)}}}\n').encode()
        except (TypeError, ValueError) as error:
            self.reply_error(request_id, INTERNAL_ERROR, f"the result is not JSON: {error}")
            return
        if len(line) - 1 > self.writer.limit:
            self.reply_error(request_id, MESSAGE_TOO_LARGE,
                             f"the result is {len(line) - 1} bytes, over the host's limit of "
                             f"{self.writer.limit}; ask for less",
                             {"limit": self.writer.limit, "size": len(line) - 1})
            return
        self.writer.write(line)

    def reply_error(self, request_id, code, message, data=None):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.writer.write(f'{{"jsonrpc":"2.0","id":{request_id},"error":'
                          f'{json.dumps(error, separators=(",", ":"))}}}\n'.encode())

    # The read loop --------------------------------------------------------------------

    def run(self, stream):
        for number, body in read_lines(stream, lambda: self.writer.limit):
            if isinstance(body, int):
                self.reply_error(NULL_ID, MESSAGE_TOO_LARGE,
                                 f"line {number} is {body} bytes, over the limit of "
                                 f"{self.writer.limit}; it was skipped",
                                 {"limit": self.writer.limit, "size": body})
                continue
            if not body.strip():
                continue
            self.handle_line(number, body)
        self.on_eof()

    def handle_line(self, number, body):
        try:
            message = parse_json(body.decode("utf-8"))
        except UnicodeDecodeError as error:
            self.reply_error(NULL_ID, PARSE_ERROR, f"line {number} is not UTF-8: {error}")
            return
        except ValueError as error:
            self.reply_error(NULL_ID, PARSE_ERROR, f"line {number} is not JSON: {error}")
            return
        if not isinstance(message, dict):
            what = "a batch (an array); batches are not supported" if isinstance(
                message, list) else f"a JSON {type(message).__name__}, not an object"
            self.reply_error(NULL_ID, INVALID_REQUEST, f"line {number} is {what}")
            return
        request_id = id_text(message.get("id"))
        readable_id = request_id or NULL_ID
        method = message.get("method")
        if method is None and ("result" in message or "error" in message):
            self.handle_response(number, message)
            return
        if message.get("jsonrpc") != "2.0":
            self.reply_error(readable_id, INVALID_REQUEST,
                             f"line {number}: `jsonrpc` must be \"2.0\"")
        elif not isinstance(method, str):
            self.reply_error(readable_id, INVALID_REQUEST,
                             f"line {number} is not a request, a notification or a response: "
                             "`method` must be a string")
        elif "id" not in message:
            self.handle_notification(method, message.get("params"))
        elif request_id is None:
            self.reply_error(NULL_ID, INVALID_REQUEST,
                             f"line {number}: a request id must be a string or a number")
        else:
            # Null or absent params are no params (section 4).
            params = message.get("params")
            self.handle_request(request_id, method, {} if params is None else params)

    # Requests -------------------------------------------------------------------------

    def handle_request(self, request_id, method, params):
        with self.lock:
            reused = request_id in self.inflight
        if reused:
            # Not under the reused id: the host would take this answer for the first
            # request's (section 4).
            self.reply_error(NULL_ID, INVALID_REQUEST,
                             f"request id {request_id} is already in flight; use a new id "
                             "for each request", {"id": json.loads(request_id)})
            return
        if method == "ping":
            if isinstance(params, dict):
                self.reply(request_id, {})
            else:
                self.reply_error(request_id, INVALID_PARAMS,
                                 "invalid params for `ping`: params must be an object")
            return
        if method != "initialize" and not self.initialized:
            self.reply_error(request_id, NOT_INITIALIZED,
                             f"`{method}` before `initialize`; the host must initialize first")
            return
        if not isinstance(params, dict):
            self.reply_error(request_id, INVALID_PARAMS,
                             f"invalid params for `{method}`: params must be an object")
            return
        if method == "initialize":
            self.initialize(request_id, params)
            return
        if method == "shutdown":
            self.shutdown(request_id)
            return
        invoke = INVOCATIONS.get(method)
        if invoke is None:
            self.reply_error(request_id, METHOD_NOT_FOUND, f"unknown method `{method}`")
            return
        if self.stopping:
            self.reply_error(request_id, UNAVAILABLE, f"`{method}` after `shutdown`",
                             {"pluginId": PLUGIN_ID, "state": "stopping"})
            return
        context = params.get("context") or {}
        try:
            check_params(method, params)
            # Find the handler on the reader thread (unknown names and bad params are
            # answered at once), then run it here if it is quick or on the pool if it
            # may wait.
            handler, args, blocking = invoke(self.plugin, params)
            if not blocking:
                self.reply(request_id, handler(None, *args))
                return
        except RpcError as error:
            self.reply_error(request_id, error.code, error.message, error.data)
            return
        except Exception as error:  # a bug in a quick handler: report it, keep serving
            self.handler_failed(request_id, method, error)
            return
        self.submit(request_id, context, handler, args)

    def submit(self, request_id, context, handler, args):
        call = Call(request_id, context)
        with self.lock:
            full = len(self.inflight) >= self.max_inflight
            if not full:
                self.inflight[request_id] = call
        if full:
            self.reply_error(request_id, OVERLOADED,
                             f"{self.max_inflight} calls already in flight; retry later",
                             {"pluginId": PLUGIN_ID, "retryAfterMs": 100,
                              "limit": self.max_inflight})
            return
        self.pool.submit(self.run_call, call, handler, args)

    def run_call(self, call, handler, args):
        """Runs on a pool thread: the handler, then exactly one answer."""
        try:
            call.check()
            result = handler(call, *args)
        except Cancelled:
            self.finish(call, error=(CANCELLED, "cancelled", None))
        except RpcError as error:
            self.finish(call, error=(error.code, error.message, error.data))
        except Exception as error:
            with self.lock:
                self.inflight.pop(call.id, None)
                self.changed.notify_all()
            self.handler_failed(call.id, "the call", error)
        else:
            self.finish(call, result=result)

    def finish(self, call, result=None, error=None):
        # Answer and forget the call under the lock, so that a `$/cancel` or a reused id
        # never sees a call that is answered but still listed.
        with self.lock:
            if error is None:
                self.reply(call.id, result)
            else:
                self.reply_error(call.id, *error)
            self.inflight.pop(call.id, None)
            self.changed.notify_all()

    def handler_failed(self, request_id, what, error):
        traceback.print_exc(file=sys.stderr)
        self.reply_error(request_id, HANDLER_FAILED, f"{what} failed: {error}",
                         {"details": f"{type(error).__name__}: {error}"})

    # Lifecycle ------------------------------------------------------------------------

    def initialize(self, request_id, params):
        if self.initialized:
            self.reply_error(request_id, ALREADY_INITIALIZED, "already initialized")
            return
        versions = params.get("protocolVersions")
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            self.reply_error(request_id, INVALID_PARAMS,
                             "invalid params for `initialize`: `protocolVersions` must be "
                             "an array of strings")
            return
        chosen = next((v for v in versions if v in SUPPORTED_VERSIONS), None)
        if chosen is None:
            self.reply_error(request_id, UNSUPPORTED_VERSION,
                             f"no protocol version in common: the host offers "
                             f"{', '.join(versions) or 'none'}, this plugin speaks "
                             f"{', '.join(SUPPORTED_VERSIONS)}; update one of them",
                             {"supported": SUPPORTED_VERSIONS, "requested": versions})
            return
        config = params.get("config", {})
        limits = params.get("limits", {})
        capabilities = params.get("capabilities", {})
        if not isinstance(config, dict) or not isinstance(limits, dict) or not isinstance(
                capabilities, dict):
            self.reply_error(request_id, INVALID_PARAMS,
                             "invalid params for `initialize`: `config`, `limits` and "
                             "`capabilities` must be objects")
            return
        problem = self.plugin.configure(config)
        if problem is not None:
            # The host validated the config against our configSchema, so this is a
            # permanent problem (an old manifest?). Exit 78: the host marks the plugin
            # failed with our stderr as the reason, and does not restart it.
            sys.stderr.write(f"notes: cannot start: {problem}\n")
            sys.stderr.flush()
            os._exit(EX_CONFIG)
        max_bytes = limits.get("maxMessageBytes")
        if type(max_bytes) is int and max_bytes > 0:
            self.writer.limit = max_bytes
        max_concurrent = limits.get("maxConcurrentRequests")
        if type(max_concurrent) is int and max_concurrent > 0:
            self.max_inflight = min(max_concurrent, 256)
        runtime = capabilities.get("runtime")
        self.runtime = tuple(runtime) if isinstance(runtime, list) else ()
        self.limits = limits
        # At most max_inflight calls wait at once, so the pool never queues work the
        # host has not been told about; its threads start on first use and are reused.
        self.pool = ThreadPoolExecutor(max_workers=self.max_inflight,
                                       thread_name_prefix="notes-call")
        self.initialized = True
        self.log("info", f"keeping at most {self.plugin.max_notes} notes",
                 maxNotes=self.plugin.max_notes)
        self.reply(request_id, {
            "protocolVersion": chosen,
            "plugin": {"id": PLUGIN_ID, "name": PLUGIN_NAME, "version": PLUGIN_VERSION},
            "capabilities": {},
            "registrations": REGISTRATIONS,
        })

    def shutdown(self, request_id):
        with self.lock:
            if self.stopping:
                # A second `shutdown`: the first one's answer covers it.
                self.reply(request_id, {})
                return
            self.stopping = True
            busy = bool(self.inflight)
            self.cancel_all()
        if not busy:
            self.finish_shutdown(request_id)
            return
        # Wait for the cancelled calls to answer off the reader thread, so that pings
        # are still answered meanwhile.
        self.shutdown_thread = threading.Thread(
            target=self.finish_shutdown, args=(request_id,), name="notes-shutdown",
            daemon=True)
        self.shutdown_thread.start()

    def finish_shutdown(self, request_id):
        timeout_ms = self.limits.get("shutdownTimeoutMs")
        if type(timeout_ms) is not int or timeout_ms <= 0:
            timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS
        with self.changed:
            self.changed.wait_for(lambda: not self.inflight, timeout_ms * 0.8 / 1000)
        # This plugin has no services to stop and keeps nothing on disk.
        self.reply(request_id, {})

    def cancel_all(self):
        # Caller holds the lock.
        for call in self.inflight.values():
            call.cancelled = True
        self.changed.notify_all()

    def on_eof(self):
        # The host is done or gone: abandon everything and exit 0 now, without waiting
        # for pool threads (os._exit skips the interpreter's join of pool threads).
        with self.lock:
            self.eof = True
            self.cancel_all()
        if self.shutdown_thread is not None:
            # A `shutdown` is being answered: its calls are cancelled, give it a moment.
            self.shutdown_thread.join(1.0)
        sys.stderr.flush()
        os._exit(0)

    # Notifications and responses ------------------------------------------------------

    def handle_notification(self, method, params):
        if not isinstance(params, dict):
            return
        if method == "$/cancel":
            with self.lock:
                call = self.inflight.get(id_text(params.get("id")))
                if call is not None:
                    call.cancelled = True
                    self.changed.notify_all()
        elif method == "initialized":
            self.ready = True
            for rejected in params.get("rejected") or ():
                if isinstance(rejected, dict):
                    self.plugin.reject(rejected)
        # Other notifications ($/progress, ones from newer hosts) are ignored.

    def handle_response(self, number, message):
        request_id = message.get("id")
        if message.get("jsonrpc") != "2.0":
            self.bad_response(number, "`jsonrpc` must be \"2.0\"")
            return
        if ("result" in message) == ("error" in message):
            self.bad_response(number, "a response needs exactly one of `result` and `error`")
            return
        if request_id is None:
            error = message.get("error")
            text = error.get("message") if isinstance(error, dict) else error
            sys.stderr.write(f"notes: the host could not read a line we sent: {text}\n")
            return
        with self.lock:
            if isinstance(request_id, str) and self.host_replies.get(request_id, 0) is None:
                self.host_replies[request_id] = message
                self.changed.notify_all()
                return
        sys.stderr.write(f"notes: line {number}: a response to an unknown id "
                         f"{json.dumps(request_id)}; ignored\n")

    def bad_response(self, number, problem):
        sys.stderr.write(f"notes: line {number}: unreadable response ({problem}); ignored\n")

    # Calls to the host ----------------------------------------------------------------

    def call_host(self, call, method, params):
        """Sends a request to the host and waits for its answer (on a pool thread only:
        the answer arrives through the reader thread)."""
        if not self.ready:
            raise RpcError(HANDLER_FAILED, f"cannot call `{method}` before `initialized`")
        if method not in self.runtime:
            raise RpcError(HANDLER_FAILED, f"the host does not offer `{method}`")
        with self.lock:
            host_id = f"notes-{self.next_host_id}"
            self.next_host_id += 1
            self.host_replies[host_id] = None
        self.writer.send({"jsonrpc": "2.0", "id": host_id, "method": method, "params": params})
        with self.changed:
            self.changed.wait_for(
                lambda: self.host_replies[host_id] is not None or call.cancelled or self.eof,
                call.budget(HOST_CALL_TIMEOUT_S))
            reply = self.host_replies.pop(host_id)
        if reply is None:
            call.check()
            timeout_ms = call.context.get("timeoutMs")
            if type(timeout_ms) is int and timeout_ms * 0.9 / 1000 < HOST_CALL_TIMEOUT_S:
                # Our own deadline passed before the host's `$/cancel` came (section 11).
                raise RpcError(TIMEOUT, f"gave up on `{method}` at the call's deadline",
                               {"timeoutMs": timeout_ms})
            raise RpcError(HANDLER_FAILED, f"the host did not answer `{method}` in time")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise RpcError(HANDLER_FAILED,
                           f"the host refused `{method}`: {error.get('message', 'no message')}",
                           {"details": error})
        return reply["result"]

    def wait(self, call, predicate, timeout):
        """Waits until `predicate()` (called with the lock held) returns a value other
        than None, or `timeout` seconds pass, and returns that value (None on timeout).
        Raises `Cancelled` if the call is cancelled meanwhile."""
        with self.changed:
            self.changed.wait_for(
                lambda: predicate() is not None or call.cancelled or self.eof, timeout)
            if call.cancelled or self.eof:
                raise Cancelled()
            return predicate()


# --------------------------------------------------------------------------------------
# The plugin: registrations and handlers
# --------------------------------------------------------------------------------------

REGISTRATIONS = [
    {"kind": "tool", "name": "note_add",
     "description": "Save a short note for later. Returns the note's number.",
     "inputSchema": {"type": "object", "additionalProperties": False,
                     "properties": {"text": {"type": "string", "minLength": 1,
                                             "description": "The note."}},
                     "required": ["text"]}},
    {"kind": "tool", "name": "note_list",
     "description": "List saved notes, newest last, optionally only those containing "
                    "some text.",
     "inputSchema": {"type": "object", "additionalProperties": False,
                     "properties": {
                         "contains": {"type": "string",
                                      "description": "Only notes containing this text "
                                                     "(case-insensitive)."},
                         "limit": {"type": "integer", "minimum": 1,
                                   "description": "At most this many notes (the newest)."}}}},
    {"kind": "tool", "name": "note_wait",
     "description": "Wait until someone saves a new note, then return it. Gives up after "
                    "`timeoutSeconds` (default 30).",
     "inputSchema": {"type": "object", "additionalProperties": False,
                     "properties": {"timeoutSeconds": {"type": "number", "minimum": 0,
                                                       "maximum": 300}}}},
    {"kind": "hook", "event": "message_received",
     "description": "Counts incoming messages for notes.count."},
    {"kind": "command", "name": "notes", "acceptsArgs": True,
     "description": "Show saved notes; `/notes add TEXT`, `/notes clear`, `/notes config`."},
    {"kind": "gatewayMethod", "method": "notes.count",
     "description": "How many notes are saved and how many messages were seen."},
]


class Notes:
    def __init__(self, session_lock):
        self.lock = session_lock
        self.session = None
        self.notes = []  # (number, text)
        self.next_number = 1
        self.messages_seen = 0
        self.max_notes = 100
        self.max_note_length = 2000
        self.disabled = set()  # (kind, key) of registrations the host rejected

    def configure(self, config):
        """Takes the validated config; returns a problem sentence or None."""
        max_notes = config.get("maxNotes", self.max_notes)
        max_note_length = config.get("maxNoteLength", self.max_note_length)
        for name, value in (("maxNotes", max_notes), ("maxNoteLength", max_note_length)):
            if type(value) is not int or value < 1:
                return (f"config.{name} must be a positive integer, got "
                        f"{json.dumps(value)}; fix plugins.entries.notes.config")
        self.max_notes = max_notes
        self.max_note_length = max_note_length
        return None

    def reject(self, rejected):
        index = rejected.get("index")
        if type(index) is int and 0 <= index < len(REGISTRATIONS):
            registration = REGISTRATIONS[index]
            key = registration.get("name") or registration.get("event") or registration.get(
                "method")
            self.disabled.add((registration["kind"], key))
            sys.stderr.write(f"notes: the host rejected {registration['kind']} `{key}` "
                             f"({rejected.get('code')}): {rejected.get('reason')}\n")

    def find(self, kind, name, table):
        handler = table.get(name) if isinstance(name, str) else None
        if handler is None or (kind, name) in self.disabled:
            raise RpcError(NOT_FOUND, f"this plugin has no {kind} named `{name}`",
                           {"kind": kind, "name": name})
        return handler

    # Tools ----------------------------------------------------------------------------

    def note_add(self, _call, args):
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            raise invalid_params("/text", "a non-empty string is required")
        if len(text) > self.max_note_length:
            return tool_text(f"The note is {len(text)} characters long; the limit is "
                             f"{self.max_note_length}. Shorten it.", is_error=True)
        with self.lock:
            if len(self.notes) >= self.max_notes:
                full = True
            else:
                full = False
                number = self.next_number
                self.next_number += 1
                self.notes.append((number, text))
                self.session.changed.notify_all()
        if full:
            self.session.log("warning", "the notebook is full", maxNotes=self.max_notes)
            return tool_text(f"The notebook is full ({self.max_notes} notes). Ask the user "
                             "to clear it with /notes clear.", is_error=True)
        return {"content": [{"type": "text", "text": f"Saved note {number}."}],
                "details": {"number": number}}

    def note_list(self, _call, args):
        contains = args.get("contains")
        limit = args.get("limit")
        if contains is not None and not isinstance(contains, str):
            raise invalid_params("/contains", "must be a string")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise invalid_params("/limit", "must be an integer of at least 1")
        with self.lock:
            notes = list(self.notes)
        if contains:
            needle = contains.casefold()
            notes = [n for n in notes if needle in n[1].casefold()]
        if limit is not None:
            notes = notes[-limit:]
        if not notes:
            return tool_text("No notes." if not contains else f"No note contains {contains!r}.")
        return {"content": [{"type": "text",
                             "text": "\n".join(f"{number}. {text}" for number, text in notes)}],
                "details": {"count": len(notes)}}

    def last_number(self):
        with self.lock:
            return self.next_number - 1

    def note_wait(self, call, args, after):
        """Waits for a note newer than `after`, the last one when the call arrived."""
        timeout = args.get("timeoutSeconds", 30)
        if type(timeout) not in (int, float) or not 0 <= timeout <= 300:
            raise invalid_params("/timeoutSeconds", "must be a number from 0 to 300")

        def first_new_note():
            # Numbers only grow and new notes go last: a scan from the end is enough.
            found = None
            for note in reversed(self.notes):
                if note[0] <= after:
                    break
                found = note
            return found

        note = self.session.wait(call, first_new_note, call.budget(timeout))
        if note is None:
            return tool_text(f"No new note within {timeout:g} s.")
        number, text = note
        return {"content": [{"type": "text", "text": f"New note {number}: {text}"}],
                "details": {"number": number}}

    # Hook, command, gateway method ----------------------------------------------------

    def message_received(self, _call, _payload):
        with self.lock:
            self.messages_seen += 1
        return None

    def command_notes(self, call, args):
        words = (args or "").strip()
        sub, _, rest = words.partition(" ")
        sub = sub.lower()
        if sub == "":
            listing = self.note_list(call, {})
            return {"text": listing["content"][0]["text"]}
        if sub == "add":
            result = self.note_add(call, {"text": rest.strip()}) if rest.strip() else None
            return {"text": result["content"][0]["text"] if result else "Usage: /notes add TEXT"}
        if sub == "clear":
            with self.lock:
                count = len(self.notes)
                self.notes.clear()
            return {"text": f"Cleared {count} note{'s' if count != 1 else ''}."}
        if sub == "config":
            # Asks the host (a plugin-to-host request) rather than trusting our copy.
            result = self.session.call_host(call, "host/getConfig", {})
            config = result.get("config") if isinstance(result, dict) else None
            return {"text": f"Config: {json.dumps(config, sort_keys=True)}"}
        return {"text": "Usage: /notes | /notes add TEXT | /notes clear | /notes config"}

    def count(self, _call, _params):
        with self.lock:
            return {"count": len(self.notes), "messagesSeen": self.messages_seen}


def tool_text(text, is_error=False):
    result = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return result


# Routing of invocations: each returns (handler, args, blocking). A blocking handler
# may wait (for the host, for a note) and runs on the pool; the others are quick and
# run on the reader thread.

# The members of each call's params this plugin reads: (name, JSON type, required).
# Wrongly typed params are answered -32602 before any name is looked up.
PARAMS = {
    "tool/invoke": [("name", str, True), ("arguments", dict, False)],
    "hook/run": [("event", str, True)],
    "command/run": [("name", str, True), ("commandBody", str, True), ("args", str, False)],
    "method/call": [("method", str, True)],
    "http/handle": [("route", str, True), ("request", dict, True)],
    "service/start": [("id", str, True)],
    "service/stop": [("id", str, True)],
    "provider/call": [("capability", str, True), ("id", str, True), ("operation", str, True)],
    "channel/call": [("id", str, True), ("operation", str, True)],
    "contextEngine/call": [("id", str, True), ("operation", str, True)],
}
TYPE_NAMES = {str: "a string", dict: "an object"}


def check_params(method, params):
    for name, kind, required in PARAMS[method] + [("context", dict, False)]:
        value = params.get(name)
        if value is None and not required:
            continue
        if not isinstance(value, kind):
            problem = "is missing" if value is None else f"must be {TYPE_NAMES[kind]}"
            raise RpcError(INVALID_PARAMS, f"invalid params for `{method}`: `{name}` {problem}",
                           {"errors": [{"path": f"/{name}", "message": problem}]})


def invoke_tool(plugin, params):
    name = params.get("name")
    handler = plugin.find("tool", name, {"note_add": plugin.note_add,
                                         "note_list": plugin.note_list,
                                         "note_wait": plugin.note_wait})
    arguments = params.get("arguments") or {}
    if name == "note_wait":
        # What "new" means is fixed now, on the reader thread, not when a pool thread
        # gets to it.
        return handler, (arguments, plugin.last_number()), True
    return handler, (arguments,), False


def invoke_hook(plugin, params):
    handler = plugin.find("hook", params.get("event"),
                          {"message_received": plugin.message_received})
    return handler, (params.get("payload"),), False


def invoke_command(plugin, params):
    handler = plugin.find("command", params.get("name"), {"notes": plugin.command_notes})
    return handler, (params.get("args"),), True


def invoke_method(plugin, params):
    handler = plugin.find("gatewayMethod", params.get("method"),
                          {"notes.count": plugin.count})
    return handler, (params.get("params"),), False


def invoke_nothing(kind, member):
    def invoke(plugin, params):
        name = params.get(member)
        if kind == "provider":
            # Providers are named `<capability>:<id>` (section 11).
            name = f"{params.get('capability')}:{name}"
        plugin.find(kind, name, {})
    return invoke


INVOCATIONS = {
    "tool/invoke": invoke_tool,
    "hook/run": invoke_hook,
    "command/run": invoke_command,
    "method/call": invoke_method,
    # Kinds this plugin registers none of: every name is unknown.
    "http/handle": invoke_nothing("httpRoute", "route"),
    "service/start": invoke_nothing("service", "id"),
    "service/stop": invoke_nothing("service", "id"),
    "provider/call": invoke_nothing("provider", "id"),
    "channel/call": invoke_nothing("channel", "id"),
    "contextEngine/call": invoke_nothing("contextEngine", "id"),
}


def main():
    if "OUTPOST_PROTOCOL" not in os.environ:
        sys.stderr.write(HINT)
        return EX_USAGE
    writer = Writer(protocol_stdout())
    session = Session(writer, None)
    plugin = Notes(session.lock)
    plugin.session = session
    session.plugin = plugin
    session.run(sys.stdin.buffer)  # returns only through os._exit at EOF
    return 0


if __name__ == "__main__":
    sys.exit(main())
