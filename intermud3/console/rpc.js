// JSON-RPC 2.0 over the gateway's own WebSocket (/ws on the page's origin),
// reconnecting with a growing delay while it is wanted.
//
// Events of the target: "open", "close", "notify" (detail: {method, params}).

export class RPCError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
  }
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

export class Gateway extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.socket = null;
    this.nextId = 1;
    this.pending = new Map();   // id -> {resolve, reject}
    this.wanted = false;        // reconnect after a drop?
    this.delay = FIRST_DELAY_MS;
    this.timer = null;
  }

  start() {
    this.wanted = true;
    this.open();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "log out");
  }

  open() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.delay = FIRST_DELAY_MS;
      this.dispatchEvent(new Event("open"));
    };
    socket.onmessage = (message) => this.received(message.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      for (const { reject } of this.pending.values()) {
        reject(new RPCError({ code: "closed", message: "connection closed" }));
      }
      this.pending.clear();
      this.dispatchEvent(new Event("close"));
      if (this.wanted) {
        this.timer = setTimeout(() => this.open(), this.delay);
        this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
      }
    };
  }

  call(method, params) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RPCError({ code: "closed", message: "not connected" }));
    }
    const id = this.nextId++;
    const request = { jsonrpc: "2.0", id, method };
    if (params !== undefined) request.params = params;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify(request));
    });
  }

  received(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.method) {
      this.dispatchEvent(new CustomEvent("notify", { detail: message }));
      return;
    }
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    if (message.error) waiting.reject(new RPCError(message.error));
    else waiting.resolve(message.result);
  }
}
