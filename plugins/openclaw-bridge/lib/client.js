// A client of the gateway API of `outpost serve`: JSON-RPC 2.0 over HTTP, bearer token.
//
// One POST per call, over node:http with a keep-alive agent (a quarter of a millisecond
// less per call than `fetch`, measured). A call that OpenClaw aborts is cancelled twice
// over: the request is destroyed (its connection closes, and `serve` cancels the calls
// of a client that goes away) and `call.cancel` names its `callId`.
// The token is read again after a 401: `outpost serve` writes a new one at each start.

import { readFileSync } from 'node:fs';
import http from 'node:http';

/** The API's error codes the bridge treats specially (docs/protocol.md §11). */
export const CODES = Object.freeze({
  invalidParams: -32602,
  handlerFailed: -32000,
  timeout: -32001,
  unavailable: -32003,
  forbidden: -32005,
  notFound: -32008,
  overloaded: -32009,
  exited: -32010,
  cancelled: -32800,
});

/** Longest a call may take on the API's side (its own cap), plus slack. */
const GUARD_MS = 3_600_000 + 10_000;

/** How long `call.cancel` and probes may take. */
const SHORT_MS = 3_000;

/**
 * A call that did not succeed: `code` is the API's JSON-RPC code (absent when `serve`
 * was not reached), `data` its data; `unreachable` says nothing answered.
 */
export class OutpostError extends Error {
  constructor(message, { code, data, unreachable = false } = {}) {
    super(message);
    this.name = 'OutpostError';
    this.code = code;
    this.data = data;
    this.unreachable = unreachable;
  }
}

let nextCallId = 0;

/** Connections to `serve`, kept open between calls. */
const agent = new http.Agent({ keepAlive: true });

/** One POST; resolves to `{status, text}`, rejects like the socket does. */
function post(url, headers, body, signal) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: 'POST',
      agent,
      signal,
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', (error) => {
      // A kept-alive connection `serve` closed meanwhile: the request never reached it.
      error.staleConnection = request.reusedSocket && ['ECONNRESET', 'EPIPE'].includes(error.code);
      reject(error);
    });
    request.end(body);
  });
}

export class OutpostClient {
  /**
   * `api()` says where `serve` is (it may change when the registry file does), the
   * token comes from OUTPOST_API_TOKEN, `token`, or `tokenFile`.
   */
  constructor({ api, token, tokenFile, env = process.env, onReachable, onUnreachable }) {
    this.api = api;
    this.fixedToken = env.OUTPOST_API_TOKEN?.trim() || token;
    this.tokenFile = tokenFile;
    this.cachedToken = undefined;
    this.onReachable = onReachable ?? (() => {});
    this.onUnreachable = onUnreachable ?? (() => {});
  }

  token(reread = false) {
    if (this.fixedToken) return this.fixedToken;
    if (this.cachedToken && !reread) return this.cachedToken;
    let text;
    try {
      text = readFileSync(this.tokenFile, 'utf8').trim();
    } catch (error) {
      throw new OutpostError(
        `no Outpost API token: cannot read ${this.tokenFile} (${error.code ?? error.message}); \`outpost serve\` writes it at each start, or set OUTPOST_API_TOKEN`,
        { unreachable: true },
      );
    }
    if (!text) throw new OutpostError(`the Outpost API token file ${this.tokenFile} is empty`, { unreachable: true });
    this.cachedToken = text;
    return text;
  }

  /**
   * `call`: one call into an Outpost plugin. `signal` aborts it; `timeoutMs` is the
   * deadline `serve` enforces (absent: the plugin's own call timeout).
   */
  async call({ kind, name, args, operation, context, timeoutMs, signal, gatewayAuthenticated }) {
    const callId = `openclaw-${process.pid}-${++nextCallId}`;
    const params = { kind, name, callId };
    if (args !== undefined) params.args = args;
    if (operation !== undefined) params.operation = operation;
    if (context && Object.keys(context).length > 0) params.context = context;
    if (timeoutMs !== undefined) params.timeoutMs = Math.max(1, Math.floor(timeoutMs));
    if (gatewayAuthenticated) params.gatewayAuthenticated = true;
    const onAbort = () => {
      // Belt and braces: the aborted request closes its connection too.
      this.request('call.cancel', { callId }, { timeoutMs: SHORT_MS }).catch(() => {});
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.request('call', params, { signal, timeoutMs: (timeoutMs ?? 0) + GUARD_MS });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One JSON-RPC request; resolves to its result, throws an OutpostError. */
  async request(method, params, { signal, timeoutMs = GUARD_MS } = {}) {
    const base = this.api();
    if (!base) {
      throw new OutpostError('the bridge does not know where `outpost serve` is: set plugins.entries.outpost.config.api or run `outpost openclaw link` again', { unreachable: true });
    }
    if (signal?.aborted) throw cancelled(signal);
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
    let stale = 0;
    for (let attempt = 0; ; attempt += 1) {
      const token = this.token(attempt - stale > 0);
      const guard = AbortSignal.timeout(timeoutMs);
      let response;
      try {
        response = await post(
          `${base}/`,
          { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body,
          signal ? AbortSignal.any([signal, guard]) : guard,
        );
      } catch (error) {
        if (signal?.aborted) throw cancelled(signal);
        if (error.staleConnection && stale === 0) {
          stale += 1;
          continue;
        }
        if (guard.aborted) {
          throw new OutpostError(`\`outpost serve\` at ${base} did not answer \`${method}\` within ${timeoutMs} ms`, { code: CODES.timeout });
        }
        const why = error.code ?? error.message;
        const unreachable = new OutpostError(
          `Outpost is not reachable at ${base} (${why}): is \`outpost serve\` running? OpenClaw keeps running, and calls work again once it is back`,
          { unreachable: true },
        );
        this.onUnreachable(unreachable);
        throw unreachable;
      }
      if (response.status === 401) {
        // A new token after a restart of `serve`: read the file once more.
        if (attempt - stale === 0 && !this.fixedToken) continue;
        const source = this.fixedToken ? 'OUTPOST_API_TOKEN or plugins.entries.outpost.config.token' : `the token file ${this.tokenFile}`;
        const refused = new OutpostError(
          `Outpost at ${base} refused the API token from ${source}: is that the token of the \`outpost serve\` listening there? (run \`outpost openclaw link\` with the config \`serve\` runs with)`,
          { code: CODES.forbidden, unreachable: true },
        );
        this.onUnreachable(refused);
        throw refused;
      }
      const { text } = response;
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        throw new OutpostError(`\`outpost serve\` at ${base} answered \`${method}\` with HTTP ${response.status} and no JSON-RPC message: ${text.slice(0, 200)}`);
      }
      this.onReachable();
      if (message.error) {
        const { code, message: text2, data } = message.error;
        throw new OutpostError(String(text2 ?? 'the call failed'), { code, data });
      }
      return message.result;
    }
  }
}

function cancelled(signal) {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'the caller went away';
  return new OutpostError(`cancelled: ${reason}`, { code: CODES.cancelled });
}
