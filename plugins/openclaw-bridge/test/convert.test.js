// Unit tests of the pure conversions: `node --test plugins/openclaw-bridge/test/`.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CODES, OutpostError } from '../lib/client.js';
import * as convert from '../lib/convert.js';

test('a call context keeps what Outpost knows and drops the rest', () => {
  const tool = { sessionKey: 'agent:main:main', agentId: 'main', messageChannel: 'webchat', agentAccountId: 'a1', requesterSenderId: 'u1', config: {}, sandboxed: false };
  assert.deepEqual(convert.callContext(tool), { sessionKey: 'agent:main:main', agentId: 'main', channel: 'webchat', accountId: 'a1', senderId: 'u1' });
  const command = { channel: 'telegram', senderId: 'u2', isAuthorizedSender: true, args: 'x', commandBody: '/x' };
  assert.deepEqual(convert.callContext(command), { channel: 'telegram', senderId: 'u2', isAuthorizedSender: true });
  assert.deepEqual(convert.callContext({ channelId: 'webchat', sessionKey: '' }), { channel: 'webchat' });
});

test('tool results: json blocks become text, isError throws with the text', () => {
  const result = convert.toolResult({ content: [{ type: 'text', text: 'hi' }, { type: 'json', json: { a: 1 } }, { type: 'image', data: 'AA==', mimeType: 'image/png' }] }, 't');
  assert.deepEqual(result, {
    content: [{ type: 'text', text: 'hi' }, { type: 'text', text: '{\n  "a": 1\n}' }, { type: 'image', data: 'AA==', mimeType: 'image/png' }],
    details: {},
  });
  assert.throws(() => convert.toolResult({ content: [{ type: 'text', text: 'no such zone' }], isError: true }, 't'), /no such zone/);
  assert.throws(() => convert.toolResult(null, 't'), /not a tool result/);
});

test('errors: invalid arguments are ToolInputError; gateway errors carry codes and retry hints', () => {
  const invalid = new OutpostError('bad args', { code: CODES.invalidParams });
  assert.equal(convert.toolError(invalid, 't').name, 'ToolInputError');
  assert.equal(convert.toolError(new OutpostError('down', { code: CODES.unavailable }), 't').name, 'Error');
  const down = new OutpostError('plugin `notes` is restarting', { code: CODES.unavailable, data: { pluginId: 'notes', state: 'restarting', retryAfterMs: 250 } });
  assert.deepEqual(convert.gatewayError(down), {
    code: 'UNAVAILABLE',
    message: 'outpost: plugin `notes` is restarting',
    retryable: true,
    retryAfterMs: 250,
    details: { outpostCode: CODES.unavailable, data: { pluginId: 'notes', state: 'restarting', retryAfterMs: 250 } },
  });
  assert.equal(convert.gatewayError(invalid).code, 'INVALID_REQUEST');
  assert.equal(convert.gatewayError(new OutpostError('policy', { code: CODES.forbidden })).code, 'FORBIDDEN');
  const gone = convert.gatewayError(new OutpostError('Outpost is not reachable at http://x', { unreachable: true }));
  assert.equal(gone.code, 'UNAVAILABLE');
  assert.equal(gone.retryable, true);
  assert.equal(gone.details, undefined);
  assert.match(convert.commandFailure(down, 'notes').text, /^⚠️ \/notes: plugin `notes` is restarting$/);
});

test('hook deadlines: the operator first, then OpenClaw defaults, minus a margin', () => {
  assert.equal(convert.hookDeadline('before_prompt_build'), 14_750);
  assert.equal(convert.hookDeadline('channel_pairing_requested'), 1_800);
  assert.equal(convert.hookDeadline('message_received'), undefined);
  assert.equal(convert.hookDeadline('message_received', { timeoutMs: 4_000 }), 3_750);
  assert.equal(convert.hookDeadline('agent_end', { timeoutMs: 4_000, timeouts: { agent_end: 60_000 } }), 59_750);
  assert.equal(convert.hookResult({ result: {}, runs: [] }), undefined);
  assert.deepEqual(convert.hookResult({ result: { prependContext: 'x' } }), { prependContext: 'x' });
});

test('any payload becomes JSON: functions dropped, bigints as text, cycles cut', () => {
  const payload = { a: 1n, f: () => 1, s: new Set([1]), m: new Map([['k', 2]]) };
  payload.self = payload;
  assert.deepEqual(convert.jsonSafe(payload), { a: '1', s: [1], m: { k: 2 } });
  assert.equal(convert.jsonSafe(undefined), null);
});

test('HTTP: headers lowercased and joined, query split, binary bodies in base64, gateway credentials kept back', () => {
  const req = { method: 'POST', url: '/notes/export?x=1&y=2', rawHeaders: ['X-A', '1', 'x-a', '2', 'Authorization', 'Bearer t', 'Content-Type', 'text/plain'] };
  const text = convert.httpInput(req, Buffer.from('hello'));
  assert.deepEqual(text, { path: '/notes/export', input: { method: 'POST', headers: { 'x-a': '1, 2', authorization: 'Bearer t', 'content-type': 'text/plain' }, query: 'x=1&y=2', body: 'hello' } });
  const binary = convert.httpInput(req, Buffer.from([0xff, 0x00]), { gatewayAuth: true });
  assert.equal(binary.input.bodyBase64, '/wA=');
  assert.equal(binary.input.headers.authorization, undefined);
  const written = { headers: {}, setHeader(n, v) { this.headers[n] = v; }, end(b) { this.body = b; } };
  assert.equal(convert.writeHttpResponse(written, { status: 201, headers: { 'content-type': 'text/plain' }, body: 'ok' }), true);
  assert.deepEqual([written.statusCode, written.headers, written.body], [201, { 'content-type': 'text/plain' }, 'ok']);
  assert.equal(convert.writeHttpResponse(written, { handled: false }), false);
});

test('offered method patterns', () => {
  assert.ok(convert.offers(['health'], 'health'));
  assert.ok(convert.offers(['chat.*'], 'chat.send'));
  assert.ok(!convert.offers(['chat.*'], 'chatter'));
  assert.ok(convert.offers(['*'], 'anything'));
  assert.ok(!convert.offers([], 'health'));
});
