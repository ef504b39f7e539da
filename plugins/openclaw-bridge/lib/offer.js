// OpenClaw's own gateway methods, offered to Outpost's plugins (`host/callMethod`).
//
// OpenClaw's plugin API has `api.runtime.gateway.request`, but it refuses every plugin
// that is neither bundled nor a trusted official install ("Gateway requests are only
// available to bundled or trusted official plugins"), and the bridge is neither. So the
// bridge does what any external client of OpenClaw does: it opens a WebSocket to its own
// gateway on loopback, authenticated with the gateway's token, asks for the
// `operator.read` and `operator.write` scopes (never `operator.admin`), and sends each
// request there. On Outpost's side it subscribes to `gateway.offer` with the methods the
// operator listed in `plugins.entries.outpost.config.offerMethods`, and answers with
// `gateway.answer`. Outpost's own policy applies first: a plugin calls only the methods
// its `outpost.plugins.<id>.hostMethods` grant.

import { offers } from './convert.js';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
const OPENCLAW_PROTOCOL = 4;

/** A minimal client of OpenClaw's gateway WebSocket protocol (connect, req, res). */
export class OpenClawGateway {
  constructor({ url, auth, version, logger }) {
    this.url = url;
    this.auth = auth;
    this.version = version;
    this.logger = logger;
    this.socket = undefined;
    this.ready = undefined;
    this.pending = new Map();
    this.nextId = 0;
  }

  connect() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      const fail = (why) => {
        reject(new Error(`cannot connect to OpenClaw's gateway at ${this.url}: ${why}`));
        this.close(why);
      };
      socket.onerror = (event) => fail(event.message ?? 'connection error');
      socket.onclose = (event) => fail(event.reason || `closed (${event.code})`);
      socket.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(String(event.data));
        } catch {
          return;
        }
        if (frame.type === 'event' && frame.event === 'connect.challenge') {
          socket.send(JSON.stringify({
            type: 'req',
            id: 'connect',
            method: 'connect',
            params: {
              minProtocol: OPENCLAW_PROTOCOL,
              maxProtocol: OPENCLAW_PROTOCOL,
              client: { id: 'gateway-client', version: this.version, platform: process.platform, mode: 'backend' },
              role: 'operator',
              scopes: ['operator.read', 'operator.write'],
              caps: [],
              auth: this.auth,
            },
          }));
        } else if (frame.type === 'res' && frame.id === 'connect') {
          if (!frame.ok) {
            fail(frame.error?.message ?? 'connect refused');
            return;
          }
          socket.onclose = (closed) => this.close(closed.reason || `closed (${closed.code})`);
          socket.onerror = () => {};
          resolve();
        } else if (frame.type === 'res') {
          const waiting = this.pending.get(frame.id);
          if (!waiting) return;
          this.pending.delete(frame.id);
          clearTimeout(waiting.timer);
          if (frame.ok) waiting.resolve(frame.payload);
          else waiting.reject(frame.error ?? { code: 'UNAVAILABLE', message: 'the request failed' });
        }
      };
    });
    this.ready.catch(() => {});
    return this.ready;
  }

  /** One request; rejects with OpenClaw's `ErrorShape` or an Error. */
  async request(method, params, timeoutMs) {
    await this.connect();
    const id = `outpost-${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`OpenClaw's gateway did not answer \`${method}\` within ${timeoutMs} ms`));
      }, Math.max(1, timeoutMs));
      this.pending.set(id, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ type: 'req', id, method, params: params ?? {} }));
    });
  }

  close(why = 'closed') {
    const socket = this.socket;
    this.socket = undefined;
    this.ready = undefined;
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(`the connection to OpenClaw's gateway closed: ${why}`));
      this.pending.delete(id);
    }
    try {
      socket?.close();
    } catch {
      // already closed
    }
  }
}

/**
 * The `gateway.offer` subscription on `outpost serve`, kept open (reconnecting with
 * backoff) until `stop()`.
 */
export class GatewayOffer {
  constructor({ client, methods, gateway, logger }) {
    this.client = client;
    this.methods = methods;
    this.gateway = gateway;
    this.logger = logger;
    this.stopped = false;
    this.socket = undefined;
    this.delay = RECONNECT_MIN_MS;
    this.timer = undefined;
  }

  start() {
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close();
    this.gateway.close('the bridge stopped');
  }

  open() {
    if (this.stopped) return;
    let url;
    let token;
    try {
      url = this.client.api().replace(/^http/, 'ws');
      token = this.client.token(true);
    } catch (error) {
      this.retry(error.message);
      return;
    }
    const socket = new WebSocket(`${url}/`, { headers: { authorization: `Bearer ${token}` } });
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'gateway.offer', params: { methods: this.methods } }));
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (message.id === 1) {
        if (message.error) this.logger.error(`outpost: \`serve\` refused the offer of OpenClaw's methods: ${message.error.message}`);
        else {
          this.delay = RECONNECT_MIN_MS;
          this.logger.info(`outpost: OpenClaw's gateway methods ${this.methods.join(', ')} are offered to Outpost's plugins`);
        }
        return;
      }
      if (message.method === 'gateway.request') this.handle(message.params?.result);
    };
    socket.onclose = () => {
      if (this.socket === socket) this.retry('the connection to `outpost serve` closed');
    };
    socket.onerror = () => {};
  }

  retry(why) {
    if (this.stopped) return;
    this.socket = undefined;
    clearTimeout(this.timer);
    this.logger.debug?.(`outpost: offer of OpenClaw's methods waits for \`serve\` (${why}); next try in ${this.delay} ms`);
    this.timer = setTimeout(() => this.open(), this.delay);
    this.timer.unref?.();
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
  }

  async handle(request) {
    if (!request || request.type !== 'method') return; // config reads and cancels
    const answer = { requestId: request.requestId };
    if (!offers(this.methods, request.method)) {
      answer.error = { code: -32005, message: `the OpenClaw bridge does not offer \`${request.method}\` (plugins.entries.outpost.config.offerMethods)` };
    } else {
      try {
        answer.result = await this.gateway.request(request.method, request.params, request.timeoutMs ?? 30_000);
        if (answer.result === undefined) answer.result = null;
      } catch (error) {
        answer.error = {
          code: -32000,
          message: `OpenClaw's \`${request.method}\` failed: ${error.message ?? 'no message'}`,
          data: error.code ? { openclawCode: error.code, details: error.details } : undefined,
        };
      }
    }
    try {
      await this.client.request('gateway.answer', answer, { timeoutMs: 10_000 });
    } catch (error) {
      this.logger.warn(`outpost: could not answer ${request.plugin}'s call of \`${request.method}\`: ${error.message}`);
    }
  }
}
