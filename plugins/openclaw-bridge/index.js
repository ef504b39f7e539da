// The OpenClaw plugin `outpost`: what the plugins of `outpost serve` offer, registered
// into OpenClaw, every call sent to Outpost's gateway API.
//
// # Theory of operation
//
// `register(api)` is synchronous, so the bridge learns the registry from the registry
// file `outpost serve` keeps (lib/registry.js), not from the API. It registers, for each
// registration there:
//
// - a tool (a factory: it is built again for each run from the current registry file,
//   so its description and input schema follow the plugin; a tool no longer in Outpost's
//   registry is withheld);
// - a typed hook per event, at the highest priority Outpost's plugins gave it: one call
//   runs every Outpost hook of that event (Outpost merges them by priority, as OpenClaw
//   does) and the merged result goes back to OpenClaw's hook runner;
// - a command, a gateway method, an HTTP route, a service.
//
// Each call is one `call` request to `outpost serve` (lib/client.js) with OpenClaw's call
// context, the deadline OpenClaw gives (a hook's budget, or `callTimeoutMs`), and its
// cancellation (an aborted tool call or a closed HTTP request cancels the Outpost call).
// Nothing is cached but the registry and the token: a plugin that is down answers with
// Outpost's error naming it and its state, a `serve` that is down with "Outpost is not
// reachable at ADDR", and once `serve` is back the next call works.
//
// The bridge's own service `outpost-bridge` runs in the gateway process only: it watches
// the registry file (logging what OpenClaw cannot pick up before the next load), reports
// Outpost's reachability as the service's health (OpenClaw's `health` method lists it
// under plugin errors), and, when `offerMethods` is set, offers OpenClaw's gateway
// methods to Outpost's plugins (lib/offer.js).
//
// # Caveats
//
// OpenClaw fixes a plugin's tool names at load and requires them in the manifest's
// `contracts.tools`; commands, hooks, gateway methods, routes and services are also
// registered at load only. Something an Outpost plugin registers later is picked up by
// `outpost openclaw link` (for tools: a new manifest) and `openclaw plugins reload
// outpost`, without restarting OpenClaw. `tool_result_persist` and
// `before_message_write` are synchronous in OpenClaw and cannot be bridged.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { OutpostClient, OutpostError, CODES } from './lib/client.js';
import * as convert from './lib/convert.js';
import { GatewayOffer, OpenClawGateway } from './lib/offer.js';
import { Registry, resolveSettings } from './lib/registry.js';

const VERSION = '0.1.0';

/** How often the gateway process looks at the registry file for changes. */
const WATCH_MS = 1_000;

/** How often the gateway process checks that `serve` answers, while it does not. */
const PROBE_MS = 5_000;

export default {
  id: 'outpost',
  name: 'Outpost',
  description: 'Runs plugins out of process: what the plugins of `outpost serve` offer, registered into OpenClaw.',
  register,
};

function register(api) {
  const log = api.logger;
  let settings;
  const registry = { current: undefined };
  try {
    settings = resolveSettings(api.pluginConfig ?? {});
    registry.current = new Registry(settings.registryFile);
    registry.current.load();
  } catch (error) {
    // Throwing makes this an OpenClaw diagnostic of the plugin `outpost` (status
    // error); OpenClaw itself goes on.
    throw new Error(`outpost: ${error.message}`);
  }
  const reg = registry.current;
  const state = { health: undefined, failing: undefined };
  const client = new OutpostClient({
    api: () => settings.api ?? reg.snapshot?.api,
    token: settings.token,
    tokenFile: settings.tokenFile,
    onUnreachable: (error) => {
      if (state.failing !== error.message) {
        state.failing = error.message;
        log.warn(`outpost: ${error.message}`);
      }
      state.health?.reportFailure(error.message);
    },
    onReachable: () => {
      if (state.failing !== undefined) {
        state.failing = undefined;
        log.info(`outpost: Outpost at ${settings.api ?? reg.snapshot?.api} answers again`);
        state.health?.clearFailure();
      }
    },
  });
  /** The live registration of `kind` and `key`, re-reading the file if it changed. */
  const current = (kind, key) => {
    reg.refresh();
    return reg.find(kind, key);
  };
  const loaded = new Set(reg.snapshot.registrations.map((r) => `${r.kind}\u0000${r.key}`));

  registerTools(api, reg, client, settings, current);
  registerHooks(api, reg, client);
  registerCommands(api, reg, client, settings, current);
  registerMethods(api, reg, client, settings, current);
  registerRoutes(api, reg, client, settings);
  registerServices(api, reg);

  let stopBridge = () => {};
  api.registerService({
    id: 'outpost-bridge',
    start(ctx) {
      state.health = ctx.serviceHealth;
      const timers = [];
      const probe = () => client.request('server.info', {}, { timeoutMs: 3_000 }).then(
        (info) => info,
        () => undefined,
      );
      probe().then((info) => {
        if (info) log.info(`outpost: connected to outpost ${info.version} at ${client.api()} (${reg.list('tool').length} tools, ${loaded.size} registrations)`);
      });
      timers.push(setInterval(() => {
        if (state.failing !== undefined) probe();
      }, PROBE_MS));
      timers.push(setInterval(() => {
        if (reg.refresh()) reportChanges(log, reg, loaded);
      }, WATCH_MS));
      for (const timer of timers) timer.unref?.();
      let offer;
      if (settings.offerMethods.length > 0) {
        const gatewayConfig = ctx.config?.gateway ?? api.config?.gateway ?? {};
        const auth = gatewayAuth(gatewayConfig);
        if (auth) {
          const port = gatewayConfig.port ?? Number(process.env.OPENCLAW_GATEWAY_PORT || 18789);
          offer = new GatewayOffer({
            client,
            methods: settings.offerMethods,
            gateway: new OpenClawGateway({ url: `ws://127.0.0.1:${port}`, auth, version: VERSION, logger: log }),
            logger: log,
          });
          offer.start();
        } else {
          log.error('outpost: offerMethods is set, but OpenClaw\'s gateway auth is neither a token nor a password the bridge can read (gateway.auth); OpenClaw\'s methods are not offered to Outpost\'s plugins');
        }
      }
      stopBridge = () => {
        for (const timer of timers) clearInterval(timer);
        offer?.stop();
      };
    },
    stop() {
      stopBridge();
    },
  });
}

function gatewayAuth(gateway) {
  const auth = gateway.auth ?? {};
  const token = typeof auth.token === 'string' ? auth.token : process.env.OPENCLAW_GATEWAY_TOKEN;
  const password = typeof auth.password === 'string' ? auth.password : process.env.OPENCLAW_GATEWAY_PASSWORD;
  if ((auth.mode ?? 'token') === 'token' && token) return { token };
  if (auth.mode === 'password' && password) return { password };
  return undefined;
}

/** Logs what changed in Outpost's registry that OpenClaw takes only at the next load. */
function reportChanges(log, reg, loaded) {
  const now = new Set(reg.snapshot.registrations.map((r) => `${r.kind}\u0000${r.key}`));
  const added = [...now].filter((k) => !loaded.has(k)).map((k) => k.split('\u0000'));
  const removed = [...loaded].filter((k) => !now.has(k)).map((k) => k.split('\u0000'));
  for (const [kind, key] of added) {
    const fix = kind === 'tool'
      ? 'run `outpost openclaw link` (the bridge\'s manifest must list the tool) and then `openclaw plugins reload outpost`'
      : 'run `openclaw plugins reload outpost`';
    log.warn(`outpost: an Outpost plugin registered ${kind} \`${key}\` after OpenClaw loaded the bridge; OpenClaw takes new registrations only when it loads a plugin: ${fix}`);
    loaded.add(`${kind}\u0000${key}`);
  }
  for (const [kind, key] of removed) {
    log.info(`outpost: ${kind} \`${key}\` is no longer in Outpost's registry; OpenClaw keeps it registered until the next load, and calls to it fail with Outpost's error`);
    loaded.delete(`${kind}\u0000${key}`);
  }
}

function declaredTools(api) {
  try {
    const manifest = JSON.parse(readFileSync(join(api.rootDir ?? '.', 'openclaw.plugin.json'), 'utf8'));
    return new Set(manifest?.contracts?.tools ?? []);
  } catch {
    return undefined;
  }
}

function registerTools(api, reg, client, settings, current) {
  const declared = declaredTools(api);
  for (const entry of reg.list('tool')) {
    const name = entry.key;
    if (declared && !declared.has(name)) {
      api.logger.warn(`outpost: Outpost's tool \`${name}\` (plugin ${entry.plugin}) is not in the bridge's manifest, so OpenClaw refuses it: run \`outpost openclaw link\` again, then \`openclaw plugins reload outpost\``);
    }
    api.registerTool((ctx) => {
      const live = current('tool', name);
      if (!live) return null;
      const registration = live.registration;
      return {
        name,
        label: registration.title ?? name,
        description: registration.description ?? '',
        parameters: registration.inputSchema ?? { type: 'object' },
        async execute(_toolCallId, params, signal) {
          let result;
          try {
            result = await client.call({
              kind: 'tool',
              name,
              args: params ?? {},
              context: convert.callContext(ctx ?? {}),
              timeoutMs: settings.callTimeoutMs,
              signal,
            });
          } catch (error) {
            throw error instanceof OutpostError ? convert.toolError(error, name) : error;
          }
          return convert.toolResult(result, name);
        },
      };
    }, { name });
  }
}

function registerHooks(api, reg, client) {
  const priorities = new Map();
  for (const entry of reg.list('hook')) {
    // The key is `event:id` for one of several handlers of an event.
    const event = entry.registration.event ?? entry.key;
    const priority = Number(entry.registration.priority ?? 0);
    priorities.set(event, Math.max(priorities.get(event) ?? -Infinity, priority));
  }
  const hooksConfig = api.config?.plugins?.entries?.outpost?.hooks ?? {};
  for (const [event, priority] of priorities) {
    if (convert.SYNC_HOOKS.has(event)) {
      api.logger.warn(`outpost: OpenClaw runs \`${event}\` synchronously and ignores a handler's promise, so the Outpost hooks of that event cannot be bridged; they run only for other gateways`);
      continue;
    }
    api.on(event, async (payload, ctx) => {
      reg.refresh();
      if (!reg.list('hook').some((r) => (r.registration.event ?? r.key) === event)) return undefined;
      let args = convert.jsonSafe(payload);
      if (args === null || typeof args !== 'object' || Array.isArray(args)) args = { value: args };
      try {
        const answer = await client.call({
          kind: 'hook',
          name: event,
          args,
          context: convert.callContext(ctx ?? {}),
          timeoutMs: convert.hookDeadline(event, hooksConfig),
          signal: ctx?.abortSignal,
        });
        return convert.hookResult(answer);
      } catch (error) {
        // OpenClaw's runner applies the hook's failure policy (skip, or fail closed).
        throw new Error(`outpost: the Outpost hooks of \`${event}\` failed: ${error.message}`);
      }
    }, { priority });
  }
}

function registerCommands(api, reg, client, settings, current) {
  for (const entry of reg.list('command')) {
    const registration = entry.registration;
    const name = registration.name.toLowerCase();
    const command = {
      name,
      description: registration.description ?? name,
      acceptsArgs: registration.acceptsArgs ?? false,
      requireAuth: registration.requireAuth ?? true,
      async handler(ctx) {
        if (!current('command', entry.key)) {
          return { text: `⚠️ /${name} is no longer offered by Outpost's plugins; \`openclaw plugins reload outpost\` drops it` };
        }
        try {
          const result = await client.call({
            kind: 'command',
            name,
            args: typeof ctx?.args === 'string' ? ctx.args : '',
            context: convert.callContext(ctx ?? {}),
            timeoutMs: settings.callTimeoutMs,
          });
          return { text: String(result?.text ?? '') };
        } catch (error) {
          return convert.commandFailure(error, name);
        }
      },
    };
    if (registration.nativeNames) command.nativeNames = registration.nativeNames;
    api.registerCommand(command);
  }
}

function registerMethods(api, reg, client, settings) {
  for (const entry of reg.list('gatewayMethod')) {
    const method = entry.key;
    api.registerGatewayMethod(method, async ({ params, respond, signal }) => {
      try {
        const result = await client.call({
          kind: 'gatewayMethod',
          name: method,
          args: params ?? {},
          timeoutMs: settings.callTimeoutMs,
          signal,
        });
        respond(true, result ?? null);
      } catch (error) {
        respond(false, undefined, convert.gatewayError(error));
      }
    });
  }
}

function registerRoutes(api, reg, client, settings) {
  for (const entry of reg.list('httpRoute')) {
    const registration = entry.registration;
    const gatewayAuth = registration.auth === 'gateway';
    api.registerHttpRoute({
      path: registration.path,
      auth: registration.auth,
      match: registration.match ?? 'exact',
      async handler(req, res) {
        const aborted = new AbortController();
        res.on('close', () => {
          if (!res.writableEnded) aborted.abort(new Error('the HTTP client went away'));
        });
        let body;
        try {
          body = await readBody(req, convert.MAX_HTTP_BODY);
        } catch (error) {
          res.statusCode = 413;
          res.end(`outpost: ${error.message}\n`);
          return true;
        }
        const { path, input } = convert.httpInput(req, body, { gatewayAuth });
        try {
          const answer = await client.call({
            kind: 'httpRoute',
            name: path,
            args: input,
            gatewayAuthenticated: gatewayAuth,
            timeoutMs: settings.callTimeoutMs,
            signal: aborted.signal,
          });
          return convert.writeHttpResponse(res, answer);
        } catch (error) {
          if (aborted.signal.aborted) return true;
          if (error.code === CODES.notFound) return false;
          res.statusCode = httpStatus(error);
          res.setHeader('content-type', 'text/plain; charset=utf-8');
          res.end(`outpost: ${error.message}\n`);
          return true;
        }
      },
    });
  }
}

function httpStatus(error) {
  switch (error.code) {
    case CODES.invalidParams:
      return 400;
    case CODES.forbidden:
      return error.unreachable ? 502 : 403;
    case CODES.timeout:
      return 504;
    default:
      return error.unreachable || error.code === CODES.unavailable || error.code === CODES.overloaded ? 503 : 502;
  }
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error(`the request body is over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function registerServices(api, reg) {
  for (const entry of reg.list('service')) {
    const id = entry.key;
    api.registerService({
      id,
      start(ctx) {
        const plugin = reg.plugin(entry.plugin);
        ctx.logger?.info?.(`outpost: service \`${id}\` runs in the Outpost plugin ${entry.plugin} (${plugin?.state ?? 'unknown state'}); \`outpost serve\` starts and stops it`);
      },
    });
  }
}
