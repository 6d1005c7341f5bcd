// corepush.js: a client for corepush's JSON command protocol (push_demo's, and any server that
// speaks it, as examples/chat.rs does). One ES module, no dependencies, no build step; runs in
// browsers and in Node >= 20 (with a global WebSocket: Node 22, or Node 20 started with
// --experimental-websocket; or pass the `WebSocket` option).
//
// What it does: connects and reconnects (exponential backoff with jitter, bounded); every op
// is a promise (`call(op, args)`, and named helpers), its reply matched by `id`, rejected on
// timeout or when the connection drops; remembers the groups and the flag it joined and bound,
// and on a reconnect joins and binds them again, recovering what it missed (`recover`) where it
// holds a position, and restoring the flag's context (`restore`) when asked to. See README.md.

/** Defaults of every option; see README.md for each. */
export const DEFAULTS = Object.freeze({
  timeout: 10000,
  backoff: Object.freeze({ initial: 200, max: 5000, factor: 2, jitter: 0.5 }),
  maxRetries: Infinity,
  restore: false,
  subscriptionOf: null,
  WebSocket: undefined,
});

/** The error a call rejects with: `code` is "timeout", "disconnected", "closed", "not-connected"
 * or "server" (the server's `error` reply, in `message`; the reply in `reply`). */
export class CorePushError extends Error {
  constructor(code, message, reply) {
    super(message);
    this.name = "CorePushError";
    this.code = code;
    if (reply !== undefined) this.reply = reply;
  }
}

/** Starts a client and resolves once its first connection is open (rejects when `maxRetries`
 * attempts failed first). */
export function connect(url, options = {}) {
  const client = new Client(url, options);
  return client.start().then(() => client);
}

/** The key of a subscription: "group:NAME" or "flag:NAME". */
function keyOf(target) {
  if (target && typeof target.group === "string") return "group:" + target.group;
  if (target && typeof target.flag === "string") return "flag:" + target.flag;
  return null;
}

/** A client. Events (an EventTarget; `on(type, fn)` too), each a CustomEvent with `detail`:
 * open, close, reconnecting, reconnect, push, recovered, restored, resubscribed, error. */
export class Client extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) },
    };
    this.socket = null;
    this.connected = false;
    // Subscriptions by key: {kind, name, positioned, epoch, offset, pending}. `pending` counts
    // the pushes of the subscription that arrive while its join/bind/recover awaits its reply.
    this.subscriptions = new Map();
    this._nextId = 1;
    this._calls = new Map();
    this._stopped = false;
    this._attempt = 0;
    this._timer = null;
    this._everOpen = false;
    this._first = null;
    this._tries = 0;
  }

  /** Listens to an event; the function gets its `detail`. Returns a function that stops it. */
  on(type, fn) {
    const listener = (event) => fn(event.detail, event);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** Connects (and keeps reconnecting); resolves once the first connection is open. */
  start() {
    if (!this._first) {
      this._first = new Promise((resolve, reject) => {
        this._firstSettle = { resolve, reject };
      });
      this._stopped = false;
      this._open();
    }
    return this._first;
  }

  /** Closes the connection for good: no reconnect; pending calls reject with "closed". */
  close(code = 1000, reason = "") {
    this._stopped = true;
    clearTimeout(this._timer);
    this._failCalls("closed", "the client was closed");
    if (this.socket) {
      try {
        this.socket.close(code, reason);
      } catch {
        /* already closing */
      }
    }
    if (this._firstSettle) {
      this._firstSettle.reject(new CorePushError("closed", "the client was closed"));
      this._firstSettle = null;
    }
  }

  /** While disconnected, tries again now instead of at the end of the backoff delay (a
   * "retry now" button). Does nothing while connected or once closed. */
  reconnect() {
    if (this._stopped || this.socket) return;
    clearTimeout(this._timer);
    this._timer = null;
    this._open();
  }

  /** Sends one op; resolves with its `result` (or, when the reply carries `partial`, with
   * the whole reply), rejects with a CorePushError. */
  call(op, args = {}, { timeout = this.options.timeout } = {}) {
    return this._send(op, args, timeout, null);
  }

  // ---- named helpers: the protocol's ops --------------------------------------------------

  whoami() { return this.call("whoami"); }

  /** Joins a group, remembered for reconnects. With `{position: true}` the client tracks the
   * group's stream position and recovers missed messages on a reconnect. */
  join(group, { position = false } = {}) {
    return this._subscribe({ kind: "group", name: group }, position);
  }

  /** Leaves a group (and forgets it). */
  async leave(group) {
    const result = await this.call("leave", { group });
    this.subscriptions.delete("group:" + group);
    return result;
  }

  /** Binds this connection to a flag, remembered (one flag at a time, as on the server);
   * `{position: true}` as for join. */
  bind(flag, { position = false } = {}) {
    return this._subscribe({ kind: "flag", name: flag }, position);
  }

  /** Binds only if no other connection holds the flag; remembered when it answers true. */
  async bindNx(flag) {
    const bound = await this.call("bindNx", { flag });
    if (bound === true) this._remember({ kind: "flag", name: flag }, false);
    return bound;
  }

  /** Unbinds the flag (and forgets it). */
  async unbind(flag) {
    const result = await this.call("unbind", { flag });
    this.subscriptions.delete("flag:" + flag);
    return result;
  }

  /** Recovers a group or flag explicitly: `{group}` or `{flag}`, with `epoch` and `offset`. */
  recover(target, epoch, offset) {
    const key = keyOf(target);
    if (!key) return Promise.reject(new TypeError("recover: a {group} or {flag}"));
    const kind = key.startsWith("group:") ? "group" : "flag";
    const sub = this._remember({ kind, name: target[kind] }, true);
    sub.epoch = epoch;
    sub.offset = offset;
    return this._recover(sub);
  }

  restore(flag) { return this.call("restore", { flag }); }
  send(to, data, extra = {}) { return this.call("send", { to, data, ...extra }); }
  sendRaw(to, text, extra = {}) { return this.call("sendRaw", { to, text, ...extra }); }
  sendByFlag(flag, data, extra = {}) { return this.call("sendByFlag", { flag, data, ...extra }); }
  sendRawByFlag(flag, text, extra = {}) { return this.call("sendRawByFlag", { flag, text, ...extra }); }
  sendToGroup(group, data, extra = {}) { return this.call("sendToGroup", { group, data, ...extra }); }
  sendRawToGroup(group, text, extra = {}) { return this.call("sendRawToGroup", { group, text, ...extra }); }
  sendToAll(data, extra = {}) { return this.call("sendToAll", { data, ...extra }); }
  sendRawToAll(text, extra = {}) { return this.call("sendRawToAll", { text, ...extra }); }
  closeClients(to, extra = {}) { return this.call("close", { to, ...extra }); }
  closeByFlag(flag, extra = {}) { return this.call("closeByFlag", { flag, ...extra }); }
  exists(to) { return this.call("exists", { to }); }
  flagExists(flag) { return this.call("flagExists", { flag }); }
  connections() { return this.call("connections"); }
  count() { return this.call("count"); }
  groupCount(group) { return this.call("groupCount", { group }); }
  set(key, value, to) { return this.call("set", to === undefined ? { key, value } : { key, value, to }); }
  get(key, to) { return this.call("get", to === undefined ? { key } : { key, to }); }
  sendMessage(action, data, workers) {
    return this.call("sendMessage", workers === undefined ? { action, data } : { action, data, workers });
  }
  sendMessageRaw(text, workers) {
    return this.call("sendMessageRaw", workers === undefined ? { text } : { text, workers });
  }

  /** The position the client holds for a group or flag: `{epoch, offset}`, or null. */
  position(target) {
    const sub = this.subscriptions.get(keyOf(target));
    return sub && sub.positioned && sub.epoch !== undefined
      ? { epoch: sub.epoch, offset: sub.offset }
      : null;
  }

  // ---- connection ------------------------------------------------------------------------

  _open() {
    const Ctor = this.options.WebSocket || globalThis.WebSocket;
    if (typeof Ctor !== "function") {
      const error = new CorePushError("not-connected",
        "no WebSocket: pass the WebSocket option (Node 20: run with --experimental-websocket)");
      this._emit("error", { error });
      this._firstSettle?.reject(error);
      this._firstSettle = null;
      return;
    }
    let socket;
    try {
      // A function picks the address per attempt (e.g. another instance of a cluster).
      const url = typeof this.url === "function" ? this.url(this._tries++) : this.url;
      socket = new Ctor(url);
    } catch (error) {
      this._emit("error", { error });
      this._scheduleReconnect();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    // An attempt that neither opens nor fails within `timeout` is given up.
    const connecting = setTimeout(() => this._failAttempt(socket), this.options.timeout);
    socket.onopen = () => {
      clearTimeout(connecting);
      this._onOpen(socket);
    };
    socket.onmessage = (event) => { if (socket === this.socket) this._onMessage(event.data); };
    socket.onerror = () => {
      if (socket !== this.socket) return;
      this._emit("error", { error: new CorePushError("disconnected", "socket error") });
      // Some WebSocket implementations (Node 20's) report a refused connection with an error
      // and no close event: an attempt that failed before it opened is over here.
      if (!this.connected) {
        clearTimeout(connecting);
        this._failAttempt(socket);
      }
    };
    socket.onclose = (event) => {
      clearTimeout(connecting);
      this._onClose(socket, event);
    };
  }

  _failAttempt(socket) {
    if (socket !== this.socket || this.connected) return;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    this._onClose(socket, { code: 1006, reason: "connection failed" });
    try {
      socket.close();
    } catch {
      /* not open yet */
    }
  }

  _onOpen(socket) {
    if (socket !== this.socket) return;
    const reconnect = this._everOpen;
    const attempts = this._attempt;
    this._attempt = 0;
    this._everOpen = true;
    this.connected = true;
    this._emit("open", { reconnect });
    if (this._firstSettle) {
      this._firstSettle.resolve();
      this._firstSettle = null;
    }
    if (reconnect) {
      this._emit("reconnect", { attempts });
      this._resubscribe();
    }
  }

  _onClose(socket, event) {
    if (socket !== this.socket) return;
    const wasOpen = this.connected;
    this.connected = false;
    this.socket = null;
    for (const sub of this.subscriptions.values()) sub.pending = null;
    this._failCalls(this._stopped ? "closed" : "disconnected", "the connection closed");
    const willReconnect = !this._stopped;
    if (wasOpen || this._stopped) {
      this._emit("close", { code: event.code, reason: event.reason, willReconnect });
    }
    if (willReconnect) this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this._stopped) return;
    const { initial, max, factor, jitter } = this.options.backoff;
    this._attempt += 1;
    if (this._attempt > this.options.maxRetries) {
      this._stopped = true;
      const error = new CorePushError("not-connected",
        `gave up after ${this.options.maxRetries} attempt(s)`);
      this._emit("error", { error });
      this._firstSettle?.reject(error);
      this._firstSettle = null;
      return;
    }
    const base = Math.min(max, initial * Math.pow(factor, this._attempt - 1));
    const delay = Math.round(base * (1 - jitter * Math.random()));
    this._emit("reconnecting", { attempt: this._attempt, delay });
    this._timer = setTimeout(() => this._open(), delay);
  }

  // ---- frames ----------------------------------------------------------------------------

  _send(op, args, timeout, sub) {
    const socket = this.socket;
    if (this._stopped) {
      return Promise.reject(new CorePushError("closed", `${op}: the client was closed`));
    }
    if (!socket || !this.connected) {
      return Promise.reject(new CorePushError("not-connected", `${op}: not connected`));
    }
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeout > 0 && Number.isFinite(timeout)
        ? setTimeout(() => {
          this._calls.delete(id);
          reject(new CorePushError("timeout", `${op}: no reply within ${timeout} ms`));
        }, timeout)
        : null;
      this._calls.set(id, { resolve, reject, timer, op });
      // Counting starts before the request leaves: a push of the subscription can only
      // arrive once the server has joined it, and then it counts after the position answered.
      if (sub) sub.pending = 0;
      socket.send(JSON.stringify({ ...args, op, id }));
    });
  }

  _onMessage(raw) {
    let data;
    if (typeof raw === "string") {
      try {
        data = JSON.parse(raw);
      } catch {
        data = undefined;
      }
    } else {
      data = raw;
    }
    // A reply: {"op": "reply", "id": …} with the id of a call in flight. (A push that looks
    // exactly like one would be taken for it: keep "op": "reply" out of pushed data.)
    if (data && data.op === "reply" && this._calls.has(data.id)) {
      const call = this._calls.get(data.id);
      this._calls.delete(data.id);
      clearTimeout(call.timer);
      if (Object.prototype.hasOwnProperty.call(data, "error")) {
        call.reject(new CorePushError("server", `${call.op}: ${data.error}`, data));
      } else {
        call.resolve(data.partial ? data : data.result);
      }
      return;
    }
    const sub = this._subscriptionOf(data, raw);
    if (sub && sub.positioned) {
      if (sub.pending !== null && sub.pending !== undefined) sub.pending += 1;
      else if (sub.offset !== undefined) sub.offset += 1;
    }
    this._emit("push", {
      data,
      text: typeof raw === "string" ? raw : undefined,
      group: sub && sub.kind === "group" ? sub.name : undefined,
      flag: sub && sub.kind === "flag" ? sub.name : undefined,
    });
  }

  /** The subscription a push belongs to: the `subscriptionOf` option's answer; without it,
   * the one positioned subscription when there is exactly one, else none. */
  _subscriptionOf(data, raw) {
    if (typeof this.options.subscriptionOf === "function") {
      let target = null;
      try {
        target = this.options.subscriptionOf(data, raw);
      } catch {
        target = null;
      }
      const key = keyOf(target);
      return key ? this.subscriptions.get(key) || null : null;
    }
    let only = null;
    for (const sub of this.subscriptions.values()) {
      if (!sub.positioned) continue;
      if (only) return null;
      only = sub;
    }
    return only;
  }

  _failCalls(code, message) {
    for (const [id, call] of this._calls) {
      clearTimeout(call.timer);
      call.reject(new CorePushError(code, `${call.op}: ${message}`));
      this._calls.delete(id);
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- subscriptions ---------------------------------------------------------------------

  _remember({ kind, name }, positioned) {
    if (kind === "flag") {
      for (const key of [...this.subscriptions.keys()]) {
        if (key.startsWith("flag:") && key !== "flag:" + name) this.subscriptions.delete(key);
      }
    }
    const key = kind + ":" + name;
    let sub = this.subscriptions.get(key);
    if (!sub) {
      sub = { kind, name, positioned, epoch: undefined, offset: undefined, pending: null };
      this.subscriptions.set(key, sub);
    }
    sub.positioned = sub.positioned || positioned;
    return sub;
  }

  async _subscribe(target, position) {
    const sub = this._remember(target, position);
    const op = target.kind === "group" ? "join" : "bind";
    const args = { [target.kind]: target.name };
    if (!position) return this.call(op, args);
    args.position = true;
    try {
      const result = await this._send(op, args, this.options.timeout, sub);
      this._place(sub, result);
      return result;
    } finally {
      sub.pending = null;
    }
  }

  /** Sets a subscription's position from a join/bind reply, past the pushes counted since. */
  _place(sub, result) {
    if (result && typeof result === "object" && result.epoch !== undefined) {
      sub.epoch = result.epoch;
      sub.offset = Number(result.offset) + (sub.pending || 0);
    }
  }

  /** Recovers one positioned subscription; emits `recovered`; resolves with the reply. */
  async _recover(sub) {
    const target = { [sub.kind]: sub.name };
    let result;
    try {
      result = await this._send("recover", { ...target, epoch: sub.epoch, offset: sub.offset },
        this.options.timeout, sub);
      if (result && result.recovered === true) {
        sub.offset = sub.offset + (sub.pending || 0);
      } else if (result && result.epoch !== undefined) {
        // Not recovered, but joined at the position the reply names (a server may say it).
        this._place(sub, result);
      }
    } catch (error) {
      // A server without history (no `recover` op) cannot recover: take a fresh position.
      if (!(error instanceof CorePushError) || error.code !== "server") throw error;
      result = { recovered: false, error: error.message };
    } finally {
      sub.pending = null;
    }
    if (!result || (result.recovered !== true && result.epoch === undefined)) {
      // The history no longer covers it: take a fresh position (leave first, so that every
      // push counted afterwards comes after the position the join answers).
      const leave = sub.kind === "group" ? "leave" : "unbind";
      await this.call(leave, target);
      await this._subscribe(sub, true);
    }
    const detail = {
      ...target,
      recovered: result?.recovered === true,
      missed: result?.recovered === true ? Number(result.missed) : undefined,
      epoch: sub.epoch,
      offset: sub.offset,
    };
    this._emit("recovered", detail);
    return result;
  }

  async _resubscribe() {
    const results = [];
    const again = async (sub) => {
      const target = { [sub.kind]: sub.name };
      let result;
      if (sub.positioned && sub.epoch !== undefined) result = await this._recover(sub);
      else if (sub.positioned) result = await this._subscribe(sub, true);
      else result = await this.call(sub.kind === "group" ? "join" : "bind", target);
      results.push({ ...target, result });
    };
    try {
      // The flag first (a server may want a name before a join), then the groups together.
      const flag = [...this.subscriptions.values()].find((s) => s.kind === "flag");
      if (flag && this.options.restore) {
        const restored = await this.call("restore", { flag: flag.name });
        this._emit("restored", { flag: flag.name, ...(restored || {}) });
      }
      if (flag) await again(flag);
      const groups = [...this.subscriptions.values()].filter((s) => s.kind === "group");
      await Promise.all(groups.map(again));
      this._emit("resubscribed", { results });
    } catch (error) {
      // A drop in the middle: the next open starts over.
      this._emit("error", { error });
    }
  }
}
