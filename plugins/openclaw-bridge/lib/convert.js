// Pure conversions between OpenClaw's shapes and Outpost's (docs/protocol.md): call
// contexts, tool results, errors, hook results, HTTP requests and responses. No I/O:
// unit-tested in test/convert.test.js.

import { CODES } from './client.js';

/**
 * OpenClaw's typed hooks it runs synchronously: a handler that returns a promise is
 * ignored, so a call to another process cannot answer them.
 */
export const SYNC_HOOKS = new Set(['tool_result_persist', 'before_message_write']);

/**
 * OpenClaw's per-handler hook budgets (docs/plugins/hooks/reference.md), used as the
 * deadline of the call when the operator sets none (`plugins.entries.outpost.hooks`).
 */
const HOOK_BUDGET_MS = {
  before_agent_run: 15_000,
  before_tool_call: 15_000,
  before_install: 15_000,
  before_agent_finalize: 15_000,
  before_prompt_build: 15_000,
  message_sending: 15_000,
  reply_payload_sending: 15_000,
  resolve_exec_env: 15_000,
  agent_end: 30_000,
  before_compaction: 30_000,
  after_compaction: 30_000,
  skill_changed: 30_000,
  skill_proposal_changed: 30_000,
  channel_pairing_requested: 2_000,
  gateway_stop: 5_000,
  skill_proposal_evaluate: 120_000,
};

/** What is left for Outpost when OpenClaw gives up after `budget`: answer first. */
const HOOK_MARGIN_MS = 250;

/** The deadline for one hook event: the operator's budget, else OpenClaw's default. */
export function hookDeadline(event, hooksConfig = {}) {
  const own = hooksConfig?.timeouts?.[event] ?? hooksConfig?.timeoutMs ?? HOOK_BUDGET_MS[event];
  if (!Number.isInteger(own) || own <= 0) return undefined;
  return Math.max(1, own - Math.min(HOOK_MARGIN_MS, own / 10));
}

/** Outpost's call context (docs/protocol.md §10) from whatever OpenClaw passed. */
export function callContext(from = {}) {
  const context = {};
  const text = (value) => (typeof value === 'string' && value !== '' ? value : undefined);
  const put = (key, value) => {
    if (value !== undefined) context[key] = value;
  };
  put('sessionKey', text(from.sessionKey));
  put('agentId', text(from.agentId));
  put('channel', text(from.channel) ?? text(from.channelId) ?? text(from.messageChannel) ?? text(from.messageProvider));
  put('accountId', text(from.accountId) ?? text(from.agentAccountId));
  put('senderId', text(from.senderId) ?? text(from.requesterSenderId));
  if (typeof from.isAuthorizedSender === 'boolean') context.isAuthorizedSender = from.isAuthorizedSender;
  return context;
}

/**
 * A JSON copy of `value`: functions, symbols and undefined dropped, bigints as strings,
 * cycles cut, so any OpenClaw event payload can be sent.
 */
export function jsonSafe(value) {
  const seen = new WeakSet();
  const text = JSON.stringify(value ?? null, (_key, v) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'function' || typeof v === 'symbol') return undefined;
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    if (v && typeof v === 'object') {
      if (seen.has(v)) return undefined;
      seen.add(v);
    }
    return v;
  });
  return text === undefined ? null : JSON.parse(text);
}

/** The text of a tool result's content blocks, for an error message. */
function contentText(content) {
  return (Array.isArray(content) ? content : [])
    .map((block) => (block?.type === 'text' ? block.text : block?.type === 'json' ? JSON.stringify(block.json) : ''))
    .filter(Boolean)
    .join('\n');
}

/**
 * An Outpost `ToolResult` as OpenClaw's `AgentToolResult`: `json` blocks become text
 * (OpenClaw's model content is text and images), `details` defaults to `{}`. A result
 * with `isError: true` throws, as OpenClaw's tools report failures (the model sees the
 * message).
 */
export function toolResult(result, tool) {
  if (result === null || typeof result !== 'object') {
    throw new Error(`outpost: tool \`${tool}\` answered ${JSON.stringify(result)}, not a tool result`);
  }
  if (result.isError) {
    const error = new Error(contentText(result.content) || `tool \`${tool}\` failed`);
    error.name = 'OutpostToolError';
    error.details = result.details;
    throw error;
  }
  const content = (Array.isArray(result.content) ? result.content : []).map((block) => {
    if (block?.type === 'text') return { type: 'text', text: String(block.text ?? '') };
    if (block?.type === 'image') return { type: 'image', data: block.data, mimeType: block.mimeType };
    if (block?.type === 'json') return { type: 'text', text: JSON.stringify(block.json, null, 2) };
    return { type: 'text', text: JSON.stringify(block) };
  });
  return { content, details: result.details ?? {} };
}

/**
 * The error a tool throws for a failed call. Invalid arguments are a `ToolInputError`
 * (OpenClaw answers them 400 with the message, and the model can correct itself).
 */
export function toolError(error, tool) {
  const wrapped = new Error(`outpost: ${error.message}`);
  if (error.code === CODES.invalidParams) wrapped.name = 'ToolInputError';
  wrapped.code = error.code;
  wrapped.data = error.data;
  wrapped.cause = error;
  wrapped.tool = tool;
  return wrapped;
}

/**
 * A failed call as OpenClaw's gateway `ErrorShape`: `INVALID_REQUEST`, `FORBIDDEN` or
 * `UNAVAILABLE` (with `retryable` and `retryAfterMs` for a plugin that is restarting),
 * Outpost's code and data in `details`.
 */
export function gatewayError(error) {
  const code = error.code === CODES.invalidParams
    ? 'INVALID_REQUEST'
    : error.code === CODES.forbidden && !error.unreachable
      ? 'FORBIDDEN'
      : 'UNAVAILABLE';
  const retryAfter = Number(error.data?.retryAfterMs);
  const retryable = Boolean(error.unreachable)
    || [CODES.timeout, CODES.unavailable, CODES.overloaded, CODES.exited].includes(error.code);
  const shape = { code, message: `outpost: ${error.message}`, retryable };
  if (Number.isInteger(retryAfter) && retryAfter > 0) shape.retryAfterMs = retryAfter;
  if (error.code !== undefined || error.data !== undefined) {
    shape.details = { outpostCode: error.code, ...(error.data === undefined ? {} : { data: error.data }) };
  }
  return shape;
}

/** The reply of a command whose call failed: the chat shows why, not a generic line. */
export function commandFailure(error, command) {
  return { text: `⚠️ /${command}: ${error.message}` };
}

/** A hook's merged result as OpenClaw's hook runner takes it: nothing for `{}`. */
export function hookResult(answer) {
  const result = answer?.result;
  if (result === null || typeof result !== 'object') return undefined;
  return Object.keys(result).length === 0 ? undefined : result;
}

/** The largest request body the bridge passes to an HTTP route (`serve` takes 16 MiB). */
export const MAX_HTTP_BODY = 16 * 1024 * 1024;

/**
 * Outpost's HTTP request input from Node's request and its body (a Buffer): lowercase
 * headers, repeated ones joined with `, `, the body as text when it is UTF-8. With
 * `gatewayAuth`, OpenClaw checked the credentials and they stay in OpenClaw: the
 * `authorization` and `cookie` headers are not passed on.
 */
export function httpInput(req, body, { gatewayAuth = false } = {}) {
  const url = new URL(req.url ?? '/', 'http://gateway');
  const headers = {};
  const raw = req.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (gatewayAuth && (name === 'authorization' || name === 'cookie')) continue;
    headers[name] = headers[name] === undefined ? raw[i + 1] : `${headers[name]}, ${raw[i + 1]}`;
  }
  const input = { method: req.method ?? 'GET', headers };
  if (url.search.length > 1) input.query = url.search.slice(1);
  if (body && body.length > 0) {
    const text = new TextDecoder('utf-8', { fatal: false }).decode(body);
    if (Buffer.from(text, 'utf8').equals(body)) input.body = text;
    else input.bodyBase64 = body.toString('base64');
  }
  return { path: url.pathname, input };
}

/** Writes an Outpost `HttpResponse` to Node's response; `false` when not handled. */
export function writeHttpResponse(res, answer) {
  if (answer?.handled === false) return false;
  res.statusCode = Number.isInteger(answer?.status) ? answer.status : 200;
  for (const [name, value] of Object.entries(answer?.headers ?? {})) {
    res.setHeader(name, value);
  }
  if (typeof answer?.bodyBase64 === 'string') res.end(Buffer.from(answer.bodyBase64, 'base64'));
  else res.end(typeof answer?.body === 'string' ? answer.body : '');
  return true;
}

/** Whether `method` matches one of `patterns` (exact, `prefix.*` or `*`). */
export function offers(patterns, method) {
  return patterns.some((pattern) => {
    if (pattern === '*') return true;
    if (pattern.endsWith('.*')) return method.startsWith(pattern.slice(0, -1));
    return pattern === method;
  });
}
