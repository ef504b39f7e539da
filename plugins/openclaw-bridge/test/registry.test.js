// Settings and the registry file: `node --test plugins/openclaw-bridge/test/`.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { Registry, resolveSettings } from '../lib/registry.js';

test('settings default to the files of `outpost serve` on its port', () => {
  const env = { XDG_STATE_HOME: '/state', HOME: '/home/u' };
  assert.deepEqual(resolveSettings({ api: 'http://127.0.0.1:9000/' }, env), {
    api: 'http://127.0.0.1:9000',
    registryFile: '/state/outpost/registry-9000.json',
    tokenFile: '/state/outpost/api-token-9000',
    token: undefined,
    callTimeoutMs: undefined,
    offerMethods: [],
  });
  assert.equal(resolveSettings({}, { HOME: '/home/u' }).tokenFile, '/home/u/.local/state/outpost/api-token-7777');
  assert.throws(() => resolveSettings({ api: 'ws://x' }, env), /must be an http:\/\/ URL/);
  assert.throws(() => resolveSettings({ callTimeoutMs: -1 }, env), /positive integer/);
  assert.throws(() => resolveSettings({ offerMethods: 'health' }, env), /offerMethods/);
  assert.throws(() => resolveSettings([], env), /must be an object/);
});

test('the registry file: read at load, read again when it changes, kept when it breaks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bridge-'));
  const file = join(dir, 'registry-7777.json');
  const registry = new Registry(file);
  assert.throws(() => registry.load(), /no Outpost registry file at .*start `outpost serve` once/);
  const write = (value) => {
    writeFileSync(`${file}.tmp`, typeof value === 'string' ? value : JSON.stringify(value));
    renameSync(`${file}.tmp`, file);
  };
  const tool = (name) => ({ available: true, key: name, kind: 'tool', plugin: 'p', registration: { kind: 'tool', name, description: name, inputSchema: { type: 'object' } } });
  write({ api: 'http://127.0.0.1:7777', seq: 3, plugins: [{ id: 'p', state: 'ready' }], registrations: [tool('a')] });
  registry.load();
  assert.equal(registry.snapshot.api, 'http://127.0.0.1:7777');
  assert.deepEqual(registry.list('tool').map((r) => r.key), ['a']);
  assert.equal(registry.plugin('p').state, 'ready');
  assert.equal(registry.refresh(), false, 'unchanged');
  write({ api: 'http://127.0.0.1:7777', seq: 4, plugins: [], registrations: [tool('a'), tool('bb')] });
  assert.equal(registry.refresh(), true);
  assert.ok(registry.find('tool', 'bb'));
  write('{ not json');
  assert.equal(registry.refresh(), false);
  assert.match(registry.problem, /is not JSON/);
  assert.ok(registry.find('tool', 'bb'), 'the last good snapshot stays');
  write({ something: 'else' });
  assert.throws(() => registry.load(), /no `plugins` and `registrations` lists/);
});
