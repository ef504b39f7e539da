// Where the bridge finds `outpost serve`, and what its plugins registered.
//
// OpenClaw calls a plugin's `register(api)` synchronously, so the bridge cannot ask the
// API what to register. `outpost serve` keeps a copy of its registry in the registry
// file (`outpost.api.registryFile`), rewritten ~50 ms after every change and kept after
// `serve` stops: the bridge reads it at load, and again (one `stat` per call) whenever
// it changed, so descriptions, schemas and availability stay current while OpenClaw
// runs.

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The port `outpost serve` listens on when its config says nothing else. */
export const DEFAULT_PORT = 7777;

/**
 * `$XDG_STATE_HOME/outpost`, else `~/.local/state/outpost`: where `outpost serve` keeps
 * its token and registry files by default.
 */
export function defaultStateDir(env = process.env) {
  const xdg = env.XDG_STATE_HOME;
  if (xdg) return join(xdg, 'outpost');
  return join(env.HOME || homedir(), '.local', 'state', 'outpost');
}

/** An error in the bridge's own settings or files: the message says what to do. */
export class SettingsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OutpostSettingsError';
  }
}

/**
 * The bridge's settings from `plugins.entries.outpost.config` (written by
 * `outpost openclaw link`), with the defaults of `outpost serve` for what is missing.
 */
export function resolveSettings(config = {}, env = process.env) {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new SettingsError('plugins.entries.outpost.config must be an object; `outpost openclaw link` writes it');
  }
  const string = (key) => {
    const value = config[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.trim() === '') {
      throw new SettingsError(`plugins.entries.outpost.config.${key} must be a non-empty string`);
    }
    return value.trim();
  };
  const api = string('api');
  let port = DEFAULT_PORT;
  if (api !== undefined) {
    let url;
    try {
      url = new URL(api);
    } catch {
      throw new SettingsError(`plugins.entries.outpost.config.api is \`${api}\`, not a URL such as http://127.0.0.1:7777`);
    }
    if (url.protocol !== 'http:') {
      throw new SettingsError(`plugins.entries.outpost.config.api must be an http:// URL (the gateway API of \`outpost serve\`), not \`${api}\``);
    }
    port = Number(url.port || 80);
  }
  const stateDir = defaultStateDir(env);
  const timeout = config.callTimeoutMs;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    throw new SettingsError('plugins.entries.outpost.config.callTimeoutMs must be a positive integer (milliseconds)');
  }
  const offer = config.offerMethods ?? [];
  if (!Array.isArray(offer) || offer.some((p) => typeof p !== 'string' || p.trim() === '')) {
    throw new SettingsError('plugins.entries.outpost.config.offerMethods must be a list of method names, `prefix.*` patterns or `*`');
  }
  return {
    api: api?.replace(/\/+$/, ''),
    registryFile: string('registryFile') ?? join(stateDir, `registry-${port}.json`),
    tokenFile: string('tokenFile') ?? join(stateDir, `api-token-${port}`),
    token: string('token'),
    callTimeoutMs: timeout,
    offerMethods: offer.map((p) => p.trim()),
  };
}

/** Parses the text of a registry file; throws a SettingsError naming the file. */
export function parseRegistry(text, file) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SettingsError(`the Outpost registry file ${file} is not JSON (${error.message}); \`outpost serve\` rewrites it at its next start`);
  }
  if (value === null || typeof value !== 'object' || !Array.isArray(value.registrations) || !Array.isArray(value.plugins)) {
    throw new SettingsError(`the Outpost registry file ${file} has no \`plugins\` and \`registrations\` lists: is it a file \`outpost serve\` wrote (outpost.api.registryFile)?`);
  }
  return {
    api: typeof value.api === 'string' ? value.api.replace(/\/+$/, '') : undefined,
    seq: Number(value.seq) || 0,
    plugins: value.plugins,
    registrations: value.registrations.filter(
      (r) => r && typeof r === 'object' && typeof r.kind === 'string' && r.registration && typeof r.plugin === 'string',
    ),
  };
}

/**
 * The registry as the registry file last said, re-read when the file changes.
 */
export class Registry {
  constructor(file) {
    this.file = file;
    this.snapshot = undefined;
    this.stamp = undefined;
    /** Why the last re-read failed, if it did (the previous snapshot is kept). */
    this.problem = undefined;
  }

  /** Reads the file; throws a SettingsError that says what to do when it cannot. */
  load() {
    let stats;
    let text;
    try {
      stats = statSync(this.file);
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if (error.code === 'ENOENT') {
        throw new SettingsError(
          `no Outpost registry file at ${this.file}: start \`outpost serve\` once with the config you linked (it writes the file and keeps it), then restart OpenClaw or run \`openclaw plugins reload outpost\``,
        );
      }
      throw new SettingsError(`cannot read the Outpost registry file ${this.file}: ${error.message}`);
    }
    this.snapshot = parseRegistry(text, this.file);
    this.stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
    this.problem = undefined;
    return this.snapshot;
  }

  /** Re-reads the file if it changed since the last read; returns whether it did. */
  refresh() {
    let stats;
    try {
      stats = statSync(this.file);
    } catch (error) {
      this.problem = `cannot read ${this.file}: ${error.message}`;
      return false;
    }
    const stamp = `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
    if (stamp === this.stamp) return false;
    try {
      this.load();
      return true;
    } catch (error) {
      // `serve` replaces the file in one rename, so this is rare: keep what we had.
      this.problem = error.message;
      return false;
    }
  }

  /** The registrations of one kind (`tool`, `hook`, `command`...). */
  list(kind) {
    return (this.snapshot?.registrations ?? []).filter((r) => r.kind === kind);
  }

  /** One registration by kind and key (a tool's name, a method, a command...). */
  find(kind, key) {
    return (this.snapshot?.registrations ?? []).find((r) => r.kind === kind && r.key === key);
  }

  /** One plugin's row (`id`, `state`, `reason`...). */
  plugin(id) {
    return (this.snapshot?.plugins ?? []).find((p) => p.id === id);
  }
}
