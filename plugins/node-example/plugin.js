#!/usr/bin/env node
// clock: an Outpost plugin in Node.js, standard library only.
//
// Tells the time, to the agent and to chat users:
//
// - tools `current_time` (in any IANA time zone) and `sleep_then_answer` (a slow call
//   that honours `$/cancel`);
// - a hook on `before_prompt_build` that tells the model the current time;
// - a `/time` command (`/time`, `/time Europe/Paris`, `/time config`);
// - a gateway method `clock.now`.
//
// It speaks the Outpost plugin protocol (docs/protocol.md) directly, without an SDK: one
// JSON-RPC 2.0 message per line on stdin/stdout. The file has three parts: the transport
// (reading and writing lines), the session (lifecycle, dispatch, cancellation, calls to
// the host) and the plugin itself (registrations and handlers). See README.md for the
// design notes.
'use strict';

const timers = require('node:timers/promises');

const PLUGIN_ID = 'clock';
const PLUGIN_NAME = 'Clock';
const PLUGIN_VERSION = '0.1.0';

const SUPPORTED_VERSIONS = ['1'];
const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 3000;
const HOST_CALL_TIMEOUT_MS = 10000;
const EX_USAGE = 2;
const EX_CONFIG = 78;

// Error codes (docs/protocol.md, section 11).
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
const HANDLER_FAILED = -32000;
const TIMEOUT = -32001;
const NOT_INITIALIZED = -32002;
const UNAVAILABLE = -32003;
const UNSUPPORTED_VERSION = -32004;
const MESSAGE_TOO_LARGE = -32006;
const ALREADY_INITIALIZED = -32007;
const NOT_FOUND = -32008;
const OVERLOADED = -32009;
const CANCELLED = -32800;

const HINT = `This is an Outpost plugin: it speaks JSON-RPC on stdin/stdout and is started by a host.
Run it under the supervisor (add this directory to plugins.load.paths and run
\`outpost serve\`), or check it with \`outpost-conformance run --plugin-dir DIR\`.
`;

/** An error answer: thrown by handlers, turned into a JSON-RPC error response. */
class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

function invalidParams(path, message) {
  return new RpcError(INVALID_PARAMS, `invalid params: ${path}: ${message}`, {
    errors: [{ path, message }],
  });
}

// ---------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------

const stdout = process.stdout;
let outputBlocked = false;
let stdoutClosed = false;

// Anything that logs with console.log would corrupt the protocol stream: send it to
// stderr, which the host shows in its log. (Code that writes to process.stdout directly
// still must not.)
console.log = console.info = console.debug = console.error;

/**
 * Writes one whole message (a string ending in "\n") with a single write. Node queues
 * writes to a pipe when the host reads slowly; when the queue is over its high-water
 * mark we stop reading stdin until it drains, so memory stays bounded.
 */
function writeLine(line) {
  if (stdoutClosed) return;
  if (!stdout.write(line) && !outputBlocked) {
    outputBlocked = true;
    process.stdin.pause();
    stdout.once('drain', () => {
      outputBlocked = false;
      if (!session.eof) process.stdin.resume();
    });
  }
}

stdout.on('error', () => {
  // EPIPE: the host closed our stdout, so it is gone; stdin reaches EOF next.
  stdoutClosed = true;
});

/**
 * Splits a byte stream into lines without a length limit of its own: a line longer than
 * `getLimit()` bytes is skipped as it streams by (never held in memory) and reported
 * with its size.
 */
class LineSplitter {
  constructor(getLimit, onLine, onTooLong) {
    this.getLimit = getLimit;
    this.onLine = onLine;
    this.onTooLong = onTooLong;
    this.parts = [];
    this.size = 0;
    this.discarding = false;
  }

  push(chunk) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) break;
      if (this.discarding) {
        this.discarding = false;
        this.onTooLong(this.size + newline - start);
      } else if (this.parts.length === 0) {
        this.emit(chunk.subarray(start, newline));
      } else {
        this.parts.push(chunk.subarray(start, newline));
        const line = Buffer.concat(this.parts, this.size + newline - start);
        this.parts = [];
        this.emit(line);
      }
      this.size = 0;
      start = newline + 1;
    }
    if (start === chunk.length) return;
    const rest = chunk.subarray(start);
    this.size += rest.length;
    if (this.discarding) return;
    // Room for a trailing "\r" over the limit.
    if (this.size > this.getLimit() + 1) {
      this.parts = [];
      this.discarding = true;
      return;
    }
    // Copy: the stream may reuse the chunk's memory.
    this.parts.push(Buffer.from(rest));
  }

  /** EOF: a last line without a newline still counts. */
  end() {
    if (this.discarding) this.onTooLong(this.size);
    else if (this.parts.length > 0) this.emit(Buffer.concat(this.parts, this.size));
    this.parts = [];
  }

  emit(line) {
    let end = line.length;
    if (end > 0 && line[end - 1] === 13) end -= 1; // CRLF
    let begin = 0;
    if (end >= 3 && line[0] === 0xef && line[1] === 0xbb && line[2] === 0xbf) begin = 3; // BOM
    if (end - begin > this.getLimit()) this.onTooLong(end - begin);
    else this.onLine(line.subarray(begin, end));
  }
}

// Decodes strictly: a line that is not UTF-8 is an error, not replacement characters.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------
// Request ids
//
// Ids compare by JSON type and value (docs/protocol.md, section 4): 7 and 7.0 are one id,
// "7" another. JSON.parse reads every number as a double and JSON.stringify writes 7.0
// back as 7, which is the same id: so an id travels as JSON.stringify of its value, and
// that text is also a map key that keeps ids apart. (Hosts use integers below 2^53, which
// a double holds exactly.)
// ---------------------------------------------------------------------------------------

function isValidId(value) {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

const idText = (value) => JSON.stringify(value);

// ---------------------------------------------------------------------------------------
// Session: lifecycle, dispatch, cancellation, calls to the host
// ---------------------------------------------------------------------------------------

const session = {
  initialized: false,
  ready: false, // after the host's `initialized` notification
  stopping: false, // after `shutdown`
  eof: false,
  failed: false, // the config is unusable: exiting with status 78
  limit: DEFAULT_MAX_MESSAGE_BYTES,
  maxInflight: 16,
  shutdownTimeoutMs: DEFAULT_SHUTDOWN_TIMEOUT_MS,
  runtime: [],
  inflight: new Map(), // id text -> { controller, done: Promise }
  hostPending: new Map(), // our request id -> { resolve, reject, cleanup }
  nextHostId: 1,
  lineNumber: 0,
};

function notify(method, params) {
  writeLine(`{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}\n`);
}

function log(level, message, fields) {
  notify('log', fields ? { level, message, fields } : { level, message });
}

function reply(id, result) {
  let json;
  try {
    json = JSON.stringify(result === undefined ? null : result);
  } catch (error) {
    replyError(id, INTERNAL_ERROR, `the result is not JSON: ${error.message}`);
    return;
  }
  const line = `{"jsonrpc":"2.0","id":${id},"result":${json}}\n`;
  // A UTF-16 code unit is at most 3 bytes of UTF-8: count bytes only for long lines.
  if (line.length * 3 > session.limit) {
    const size = Buffer.byteLength(line) - 1;
    if (size > session.limit) {
      replyError(id, MESSAGE_TOO_LARGE,
        `the result is ${size} bytes, over the host's limit of ${session.limit}; ask for less`,
        { limit: session.limit, size });
      return;
    }
  }
  writeLine(line);
}

function replyError(id, code, message, data) {
  const error = data === undefined ? { code, message } : { code, message, data };
  writeLine(`{"jsonrpc":"2.0","id":${id},"error":${JSON.stringify(error)}}\n`);
}

function handleLine(bytes) {
  if (session.failed) return;
  const number = ++session.lineNumber;
  let text;
  let message;
  try {
    text = utf8.decode(bytes);
  } catch {
    replyError('null', PARSE_ERROR, `line ${number} is not UTF-8`);
    return;
  }
  if (text.trim() === '') return;
  try {
    message = JSON.parse(text);
  } catch (error) {
    replyError('null', PARSE_ERROR, `line ${number} is not JSON: ${error.message}`);
    return;
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    const what = Array.isArray(message)
      ? 'a batch (an array); batches are not supported'
      : `a JSON ${message === null ? 'null' : typeof message}, not an object`;
    replyError('null', INVALID_REQUEST, `line ${number} is ${what}`);
    return;
  }
  const hasId = Object.hasOwn(message, 'id');
  const id = isValidId(message.id) ? idText(message.id) : 'null';
  const method = message.method;
  if (method === undefined && (Object.hasOwn(message, 'result') || Object.hasOwn(message, 'error'))) {
    handleResponse(number, message);
  } else if (message.jsonrpc !== '2.0') {
    replyError(id, INVALID_REQUEST, `line ${number}: \`jsonrpc\` must be "2.0"`);
  } else if (typeof method !== 'string') {
    replyError(id, INVALID_REQUEST,
      `line ${number} is not a request, a notification or a response: \`method\` must be a string`);
  } else if (!hasId) {
    handleNotification(method, message.params);
  } else if (id === 'null') {
    replyError('null', INVALID_REQUEST, `line ${number}: a request id must be a string or a number`);
  } else {
    handleRequest(id, method, message.params ?? {}); // null or absent params are no params
  }
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// Requests --------------------------------------------------------------------------------

function handleRequest(id, method, params) {
  if (session.inflight.has(id)) {
    // Not under the reused id: the host would take this answer for the first call's.
    replyError('null', INVALID_REQUEST, `request id ${id} is already in flight; use a new id for each request`,
      { id: JSON.parse(id) });
    return;
  }
  if (method === 'ping') {
    if (isObject(params)) reply(id, {});
    else replyError(id, INVALID_PARAMS, 'invalid params for `ping`: params must be an object');
    return;
  }
  if (method !== 'initialize' && !session.initialized) {
    replyError(id, NOT_INITIALIZED, `\`${method}\` before \`initialize\`; the host must initialize first`);
    return;
  }
  if (!isObject(params)) {
    replyError(id, INVALID_PARAMS, `invalid params for \`${method}\`: params must be an object`);
    return;
  }
  if (method === 'initialize') {
    initialize(id, params);
    return;
  }
  if (method === 'shutdown') {
    shutdown(id);
    return;
  }
  const route = Object.hasOwn(INVOCATIONS, method) ? INVOCATIONS[method] : undefined;
  if (route === undefined) {
    replyError(id, METHOD_NOT_FOUND, `unknown method \`${method}\``);
    return;
  }
  if (session.stopping) {
    replyError(id, UNAVAILABLE, `\`${method}\` after \`shutdown\``, { pluginId: PLUGIN_ID, state: 'stopping' });
    return;
  }
  if (session.inflight.size >= session.maxInflight) {
    replyError(id, OVERLOADED, `${session.maxInflight} calls already in flight; retry later`,
      { pluginId: PLUGIN_ID, retryAfterMs: 100, limit: session.maxInflight });
    return;
  }
  const context = isObject(params.context) ? params.context : {};
  const controller = new AbortController();
  let result;
  try {
    checkParams(method, params);
    const [handler, args] = route(params);
    result = handler(args, { signal: controller.signal, context, id });
  } catch (error) {
    answerFailure(id, error);
    return;
  }
  if (!(result instanceof Promise)) {
    // Quick handlers answer before the next line is read.
    reply(id, result);
    return;
  }
  const done = result.then(
    (value) => reply(id, value), // finished, even if cancelled meanwhile: send the result
    (error) => answerFailure(id, error),
  ).finally(() => session.inflight.delete(id));
  session.inflight.set(id, { controller, done });
}

function answerFailure(id, error) {
  if (error instanceof RpcError) {
    replyError(id, error.code, error.message, error.data);
  } else if (error && error.name === 'AbortError') {
    replyError(id, CANCELLED, 'cancelled');
  } else {
    process.stderr.write(`clock: a handler failed: ${error && error.stack ? error.stack : error}\n`);
    replyError(id, HANDLER_FAILED, `the call failed: ${error && error.message ? error.message : error}`,
      { details: String(error) });
  }
}

// Lifecycle -------------------------------------------------------------------------------

function initialize(id, params) {
  if (session.initialized) {
    replyError(id, ALREADY_INITIALIZED, 'already initialized');
    return;
  }
  const versions = params.protocolVersions;
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string')) {
    replyError(id, INVALID_PARAMS,
      'invalid params for `initialize`: `protocolVersions` must be an array of strings');
    return;
  }
  const chosen = versions.find((v) => SUPPORTED_VERSIONS.includes(v));
  if (chosen === undefined) {
    replyError(id, UNSUPPORTED_VERSION,
      `no protocol version in common: the host offers ${versions.join(', ') || 'none'}, ` +
        `this plugin speaks ${SUPPORTED_VERSIONS.join(', ')}; update one of them`,
      { supported: SUPPORTED_VERSIONS, requested: versions });
    return;
  }
  const config = params.config === undefined ? {} : params.config;
  const limits = params.limits === undefined ? {} : params.limits;
  const capabilities = params.capabilities === undefined ? {} : params.capabilities;
  if (!isObject(config) || !isObject(limits) || !isObject(capabilities)) {
    replyError(id, INVALID_PARAMS,
      'invalid params for `initialize`: `config`, `limits` and `capabilities` must be objects');
    return;
  }
  const problem = configure(config);
  if (problem !== undefined) {
    // The host validated the config against our configSchema, but a schema cannot tell
    // a real time zone from a typo. Exit 78: the host marks the plugin failed with our
    // stderr as the reason, and does not restart it.
    session.failed = true;
    process.stdin.pause();
    process.stderr.write(`clock: cannot start: ${problem}\n`, () => process.exit(EX_CONFIG));
    return;
  }
  if (Number.isInteger(limits.maxMessageBytes) && limits.maxMessageBytes > 0) {
    session.limit = limits.maxMessageBytes;
  }
  if (Number.isInteger(limits.maxConcurrentRequests) && limits.maxConcurrentRequests > 0) {
    session.maxInflight = limits.maxConcurrentRequests;
  }
  if (Number.isInteger(limits.shutdownTimeoutMs) && limits.shutdownTimeoutMs > 0) {
    session.shutdownTimeoutMs = limits.shutdownTimeoutMs;
  }
  if (Array.isArray(capabilities.runtime)) session.runtime = capabilities.runtime;
  session.initialized = true;
  log('info', `default time zone ${clock.defaultTimezone}`);
  reply(id, {
    protocolVersion: chosen,
    plugin: { id: PLUGIN_ID, name: PLUGIN_NAME, version: PLUGIN_VERSION },
    capabilities: {},
    registrations: REGISTRATIONS,
  });
}

function shutdown(id) {
  if (session.stopping) {
    reply(id, {}); // a second `shutdown`: nothing more to do
    return;
  }
  session.stopping = true;
  const calls = [...session.inflight.values()];
  for (const call of calls) call.controller.abort();
  if (calls.length === 0) {
    reply(id, {});
    return;
  }
  // Cancelled calls answer -32800 on their own; give them most of the host's budget.
  const limit = timers.setTimeout(session.shutdownTimeoutMs * 0.8, undefined, { ref: false });
  Promise.race([Promise.allSettled(calls.map((call) => call.done)), limit]).then(() => reply(id, {}));
}

function onEof() {
  // The host is done or gone: abandon everything and exit 0 now.
  session.eof = true;
  for (const call of session.inflight.values()) call.controller.abort();
  for (const pending of session.hostPending.values()) pending.cleanup();
  // Let the cancelled calls answer, then exit once our output is flushed. The fallback
  // timer covers a host that stopped reading our stdout.
  setImmediate(() => {
    const exit = () => process.exit(0);
    if (stdoutClosed || stdout.writableLength === 0) exit();
    else {
      stdout.once('drain', exit);
      setTimeout(exit, 1000).unref();
    }
  });
}

// Notifications and responses --------------------------------------------------------------

function handleNotification(method, params) {
  if (!isObject(params)) return;
  if (method === '$/cancel') {
    if (!isValidId(params.id)) return;
    const call = session.inflight.get(idText(params.id));
    if (call !== undefined) call.controller.abort();
  } else if (method === 'initialized') {
    session.ready = true;
    for (const rejected of Array.isArray(params.rejected) ? params.rejected : []) {
      if (isObject(rejected)) clock.reject(rejected);
    }
  }
  // Other notifications ($/progress, ones from newer hosts) are ignored.
}

function handleResponse(number, message) {
  if (message.jsonrpc !== '2.0' || Object.hasOwn(message, 'result') === Object.hasOwn(message, 'error')) {
    process.stderr.write(`clock: line ${number}: an unreadable response; ignored\n`);
    return;
  }
  if (message.id === null) {
    const error = isObject(message.error) ? message.error.message : message.error;
    process.stderr.write(`clock: the host could not read a line we sent: ${error}\n`);
    return;
  }
  const pending = typeof message.id === 'string' ? session.hostPending.get(message.id) : undefined;
  if (pending === undefined) {
    process.stderr.write(`clock: line ${number}: a response to an unknown id ${JSON.stringify(message.id)}; ignored\n`);
    return;
  }
  pending.cleanup();
  if (Object.hasOwn(message, 'error')) pending.reject(message.error);
  else pending.resolve(message.result);
}

// Calls to the host -------------------------------------------------------------------------

/** Sends a request to the host; resolves with its result. */
function callHost(call, method, params) {
  if (!session.ready) {
    return Promise.reject(new RpcError(HANDLER_FAILED, `cannot call \`${method}\` before \`initialized\``));
  }
  if (!session.runtime.includes(method)) {
    return Promise.reject(new RpcError(HANDLER_FAILED, `the host does not offer \`${method}\``));
  }
  const id = `clock-${session.nextHostId++}`;
  return new Promise((resolve, reject) => {
    const budget = Number.isInteger(call.context.timeoutMs) ? call.context.timeoutMs : HOST_CALL_TIMEOUT_MS;
    const timer = setTimeout(() => {
      cleanup();
      reject(budget < HOST_CALL_TIMEOUT_MS
        // Our own deadline passed before the host's `$/cancel` came (section 11).
        ? new RpcError(TIMEOUT, `gave up on \`${method}\` at the call's deadline`, { timeoutMs: budget })
        : new RpcError(HANDLER_FAILED, `the host did not answer \`${method}\` in time`));
    }, Math.min(budget, HOST_CALL_TIMEOUT_MS));
    const onAbort = () => {
      cleanup();
      reject(call.signal.reason);
    };
    const cleanup = () => {
      clearTimeout(timer);
      call.signal.removeEventListener('abort', onAbort);
      session.hostPending.delete(id);
    };
    call.signal.addEventListener('abort', onAbort, { once: true });
    session.hostPending.set(id, {
      cleanup,
      resolve,
      reject: (error) => reject(new RpcError(HANDLER_FAILED,
        `the host refused \`${method}\`: ${isObject(error) ? error.message : error}`, { details: error })),
    });
    writeLine(`{"jsonrpc":"2.0","id":"${id}","method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}\n`);
  });
}

// ---------------------------------------------------------------------------------------
// The plugin: registrations and handlers
// ---------------------------------------------------------------------------------------

const REGISTRATIONS = [
  {
    kind: 'tool',
    name: 'current_time',
    description: 'The current date and time, in a given IANA time zone (default: the configured one).',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        timezone: { type: 'string', description: 'An IANA time zone, such as Europe/Paris or UTC.' },
      },
    },
  },
  {
    kind: 'tool',
    name: 'sleep_then_answer',
    description: 'Wait some seconds, then answer with the given text. For trying out timeouts and cancellation.',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        seconds: { type: 'number', minimum: 0, maximum: 600 },
        answer: { type: 'string' },
      },
      required: ['seconds'],
    },
  },
  {
    kind: 'hook',
    event: 'before_prompt_build',
    description: 'Tells the model the current time.',
  },
  {
    kind: 'command',
    name: 'time',
    acceptsArgs: true,
    description: 'Show the time; `/time Europe/Paris` for another zone, `/time config` for the config.',
  },
  {
    kind: 'gatewayMethod',
    method: 'clock.now',
    description: 'The current time as ISO 8601 text and milliseconds since the epoch.',
  },
];

const clock = {
  defaultTimezone: 'UTC',
  disabled: new Set(), // "kind key" of registrations the host rejected
  formats: new Map(), // time zone -> Intl.DateTimeFormat (building one is slow)

  reject(rejected) {
    const registration = REGISTRATIONS[rejected.index];
    if (registration === undefined) return;
    const key = registration.name ?? registration.event ?? registration.method;
    this.disabled.add(`${registration.kind} ${key}`);
    process.stderr.write(`clock: the host rejected ${registration.kind} \`${key}\` (${rejected.code}): ${rejected.reason}\n`);
  },

  find(kind, name, table) {
    const handler = typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
    if (handler === undefined || this.disabled.has(`${kind} ${name}`)) {
      throw new RpcError(NOT_FOUND, `this plugin has no ${kind} named \`${name}\``, { kind, name });
    }
    return handler;
  },

  /** The formatter for a time zone; throws RangeError for an unknown one. */
  format(timezone) {
    let format = this.formats.get(timezone);
    if (format === undefined) {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: timezone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
        timeZoneName: 'longOffset',
      });
      if (this.formats.size >= 256) this.formats.clear();
      this.formats.set(timezone, format);
    }
    return format;
  },

  /** Now, as ISO 8601 local time with offset in `timezone`: 2026-11-22T18:00:00+01:00. */
  now(timezone) {
    const date = new Date();
    const parts = {};
    for (const part of this.format(timezone).formatToParts(date)) parts[part.type] = part.value;
    // "GMT+09:00", or "GMT" (some ICU versions: "GMT+00:00") for a zero offset.
    const name = parts.timeZoneName;
    const offset = name === 'GMT' || name === 'GMT+00:00' ? 'Z' : name.slice(3);
    return {
      iso: `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`,
      epochMs: date.getTime(),
      timezone,
    };
  },

  /** Now in `timezone`, or an error sentence for a zone that does not exist. */
  tryNow(timezone) {
    try {
      return this.now(timezone);
    } catch (error) {
      if (error instanceof RangeError) return `Unknown time zone "${timezone}"; use an IANA name such as Europe/Paris or UTC.`;
      throw error;
    }
  },

  // Tools ------------------------------------------------------------------------------

  currentTime(args) {
    const timezone = args.timezone ?? clock.defaultTimezone;
    if (typeof timezone !== 'string') throw invalidParams('/timezone', 'must be a string');
    const now = clock.tryNow(timezone);
    if (typeof now === 'string') return { content: [{ type: 'text', text: now }], isError: true };
    return { content: [{ type: 'text', text: `It is ${now.iso} in ${timezone}.` }], details: now };
  },

  async sleepThenAnswer(args, call) {
    const { seconds, answer = `Slept ${seconds} s.` } = args;
    if (typeof seconds !== 'number' || !(seconds >= 0 && seconds <= 600)) {
      throw invalidParams('/seconds', 'must be a number from 0 to 600');
    }
    if (typeof answer !== 'string') throw invalidParams('/answer', 'must be a string');
    // Rejects with an AbortError on `$/cancel`, which is answered -32800. (No timer for
    // zero seconds: a timer costs at least a millisecond.)
    if (seconds > 0) await timers.setTimeout(seconds * 1000, undefined, { signal: call.signal });
    return { content: [{ type: 'text', text: answer }] };
  },

  // Hook, command, gateway method --------------------------------------------------------

  beforePromptBuild() {
    const now = clock.now(clock.defaultTimezone);
    return { prependSystemContext: `The current time is ${now.iso} (${now.timezone}).` };
  },

  time(args, call) {
    const words = (args ?? '').trim();
    if (words.toLowerCase() === 'config') {
      // Asks the host (a plugin-to-host request) rather than trusting our copy.
      return callHost(call, 'host/getConfig', {}).then((result) => ({
        text: `Config: ${JSON.stringify(isObject(result) ? result.config : result)}`,
      }));
    }
    const now = clock.tryNow(words || clock.defaultTimezone);
    return { text: typeof now === 'string' ? now : `${now.iso} (${now.timezone})` };
  },

  methodNow(params) {
    const timezone = isObject(params) && params.timezone !== undefined ? params.timezone : clock.defaultTimezone;
    if (typeof timezone !== 'string') throw invalidParams('/timezone', 'must be a string');
    const now = clock.tryNow(timezone);
    if (typeof now === 'string') throw invalidParams('/timezone', now);
    return now;
  },
};

/** Takes the validated config; returns a problem sentence or undefined. */
function configure(config) {
  const timezone = config.defaultTimezone ?? 'UTC';
  if (typeof timezone !== 'string' || typeof clock.tryNow(timezone) === 'string') {
    return `config.defaultTimezone ${JSON.stringify(timezone)} is not a known IANA time zone ` +
      '(such as Europe/Paris or UTC); fix plugins.entries.clock.config';
  }
  clock.defaultTimezone = timezone;
  return undefined;
}

// Routing of invocations: each returns [handler, args]. A handler returns its result, or
// a Promise for calls that wait (timers, the host); either way the read loop goes on.

// The members of each call's params this plugin reads: [name, JSON type, required].
// Wrongly typed params are answered -32602 before any name is looked up.
const PARAMS = {
  'tool/invoke': [['name', 'string', true], ['arguments', 'object', false]],
  'hook/run': [['event', 'string', true]],
  'command/run': [['name', 'string', true], ['commandBody', 'string', true], ['args', 'string', false]],
  'method/call': [['method', 'string', true]],
  'http/handle': [['route', 'string', true], ['request', 'object', true]],
  'service/start': [['id', 'string', true]],
  'service/stop': [['id', 'string', true]],
  'provider/call': [['capability', 'string', true], ['id', 'string', true], ['operation', 'string', true]],
  'channel/call': [['id', 'string', true], ['operation', 'string', true]],
  'contextEngine/call': [['id', 'string', true], ['operation', 'string', true]],
};

function checkParams(method, params) {
  for (const [name, type, required] of [...PARAMS[method], ['context', 'object', false]]) {
    const value = params[name];
    if ((value === undefined || value === null) && !required) continue;
    const fits = type === 'object' ? isObject(value) : typeof value === type;
    if (!fits) {
      const problem = value === undefined ? 'is missing' : `must be ${type === 'object' ? 'an object' : 'a string'}`;
      throw new RpcError(INVALID_PARAMS, `invalid params for \`${method}\`: \`${name}\` ${problem}`, {
        errors: [{ path: `/${name}`, message: problem }],
      });
    }
  }
}

function nothingRegistered(kind, member) {
  // Providers are named `<capability>:<id>` (section 11).
  const name = (params) => (kind === 'provider' ? `${params.capability}:${params[member]}` : params[member]);
  return (params) => clock.find(kind, name(params), {});
}

const INVOCATIONS = {
  'tool/invoke': (params) => [
    clock.find('tool', params.name, { current_time: clock.currentTime, sleep_then_answer: clock.sleepThenAnswer }),
    params.arguments ?? {},
  ],
  'hook/run': (params) => [clock.find('hook', params.event, { before_prompt_build: clock.beforePromptBuild }), params.payload],
  'command/run': (params) => [clock.find('command', params.name, { time: clock.time }), params.args],
  'method/call': (params) => [clock.find('gatewayMethod', params.method, { 'clock.now': clock.methodNow }), params.params],
  // Kinds this plugin registers none of: every name is unknown.
  'http/handle': nothingRegistered('httpRoute', 'route'),
  'service/start': nothingRegistered('service', 'id'),
  'service/stop': nothingRegistered('service', 'id'),
  'provider/call': nothingRegistered('provider', 'id'),
  'channel/call': nothingRegistered('channel', 'id'),
  'contextEngine/call': nothingRegistered('contextEngine', 'id'),
};

// ---------------------------------------------------------------------------------------

function main() {
  if (process.env.OUTPOST_PROTOCOL === undefined) {
    process.stderr.write(HINT);
    process.exitCode = EX_USAGE;
    return;
  }
  const lines = new LineSplitter(
    () => session.limit,
    handleLine,
    (size) => {
      const number = ++session.lineNumber;
      replyError('null', MESSAGE_TOO_LARGE,
        `line ${number} is ${size} bytes, over the limit of ${session.limit}; it was skipped`,
        { limit: session.limit, size });
    },
  );
  process.stdin.on('data', (chunk) => lines.push(chunk));
  process.stdin.on('end', () => {
    lines.end();
    onEof();
  });
}

main();
