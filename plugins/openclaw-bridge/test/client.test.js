// The API client against a small stand-in for `outpost serve`:
// `node --test plugins/openclaw-bridge/test/`.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { CODES, OutpostClient } from '../lib/client.js';

/** A server that answers JSON-RPC with `answer(request, token)` and records requests. */
async function standIn(answer) {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', async () => {
      const request = JSON.parse(body);
      const token = (req.headers.authorization ?? '').replace('Bearer ', '');
      seen.push({ method: request.method, params: request.params, token });
      const reply = await answer(request, token, res);
      if (reply === undefined) return;
      if (reply === 401) {
        res.statusCode = 401;
        res.end('{}');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: request.id, ...reply }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, url: `http://127.0.0.1:${server.address().port}` };
}

function tokenFile(text) {
  const file = join(mkdtempSync(join(tmpdir(), 'bridge-token-')), 'api-token');
  writeFileSync(file, `${text}\n`);
  return file;
}

test('a call sends kind, name, args, context and deadline, and returns the result', async () => {
  const { server, seen, url } = await standIn(() => ({ result: { content: [], details: { words: 2 } } }));
  const client = new OutpostClient({ api: () => url, tokenFile: tokenFile('t1'), env: {} });
  const result = await client.call({ kind: 'tool', name: 'word_count', args: { text: 'a b' }, context: { sessionKey: 's' }, timeoutMs: 5000 });
  assert.deepEqual(result.details, { words: 2 });
  assert.equal(seen[0].method, 'call');
  assert.equal(seen[0].token, 't1');
  assert.deepEqual({ ...seen[0].params, callId: undefined }, { kind: 'tool', name: 'word_count', args: { text: 'a b' }, context: { sessionKey: 's' }, timeoutMs: 5000, callId: undefined });
  server.close();
});

test('after a 401 the token file is read again; a token still refused says where it came from', async () => {
  const file = tokenFile('old');
  let current = 'new';
  const { server, url } = await standIn((_request, token) => (token === current ? { result: 'ok' } : 401));
  const client = new OutpostClient({ api: () => url, tokenFile: file, env: {} });
  client.token();
  writeFileSync(file, 'new\n');
  assert.equal(await client.request('server.info', {}), 'ok');
  current = 'newer';
  await assert.rejects(client.request('server.info', {}), (error) => {
    assert.match(error.message, /refused the API token from the token file .*api-token/);
    assert.equal(error.unreachable, true);
    return true;
  });
  server.close();
});

test('errors keep the API code and data; nothing listening is "not reachable at ADDR"', async () => {
  const { server, url } = await standIn(() => ({ error: { code: CODES.unavailable, message: 'plugin `notes` is restarting', data: { state: 'restarting' } } }));
  const gone = [];
  const client = new OutpostClient({ api: () => url, token: 't', env: {}, onUnreachable: (e) => gone.push(e.message) });
  await assert.rejects(client.call({ kind: 'tool', name: 'x' }), { code: CODES.unavailable, data: { state: 'restarting' } });
  await new Promise((resolve) => server.close(resolve));
  await assert.rejects(client.call({ kind: 'tool', name: 'x' }), /Outpost is not reachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  assert.equal(gone.length, 1);
});

test('an aborted call closes its request and sends call.cancel with its callId', async () => {
  const { server, seen, url } = await standIn((request, _token, res) => {
    if (request.method === 'call.cancel') return { result: { cancelled: true } };
    res.on('close', () => { seen.push({ method: 'closed' }); });
    return undefined; // never answers
  });
  const client = new OutpostClient({ api: () => url, token: 't', env: {} });
  const aborter = new AbortController();
  setTimeout(() => aborter.abort(new Error('the run was stopped')), 100);
  await assert.rejects(client.call({ kind: 'tool', name: 'slow', signal: aborter.signal }), (error) => {
    assert.equal(error.code, CODES.cancelled);
    assert.match(error.message, /the run was stopped/);
    return true;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const callId = seen[0].params.callId;
  assert.ok(seen.some((r) => r.method === 'call.cancel' && r.params.callId === callId), JSON.stringify(seen));
  assert.ok(seen.some((r) => r.method === 'closed'));
  server.closeAllConnections();
  server.close();
});
