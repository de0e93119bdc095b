// The job runtime inside a Worker: instantiates the job's module, serves
// Ferry's host functions (docs/abi.md) and WASI, enforces the limits, and
// classifies failures with the same kinds as Ferry's Go runtime.
//
// Host calls are synchronous in the ABI, but fetch and Durable Object calls
// are asynchronous in a Worker. Jobs that import state or HTTP functions run
// under JSPI: those imports are WebAssembly.Suspending and ferry_run/_start
// are called through WebAssembly.promising, so the guest's stack is parked
// while the I/O is in flight and the isolate serves other requests. Pure
// jobs never suspend and are called directly.

import { Wasi, ExitError } from "./wasi.js";

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });
const lossy = new TextDecoder("utf-8");

// ABI status codes.
const NOT_FOUND = -1;
const DENIED = -2;
const TOO_LARGE = -3;
const FAILED = -4;
const INVALID = -5;
const RATE_LIMITED = -6;

const MAX_LOG_LINE = 4 << 10;
const LEVELS = ["debug", "info", "warn", "error"];
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

// JobFailure is a failed invocation. kind is the runtime's kind: trap, exit,
// guest_error, abi_violation, timeout, memory_limit, input_too_large,
// output_too_large; "host" for the host's own failures.
export class JobFailure extends Error {
  constructor(kind, message, extra = {}) {
    super(message);
    this.kind = kind;
    Object.assign(this, extra);
  }
}

class Timeout extends Error {}

// Job is one deployed job in this isolate.
export class Job {
  constructor(module, tickModule, cfg, state) {
    this.module = module;
    this.tickModule = tickModule;
    this.cfg = cfg;
    this.state = state; // null, or a function (namespace) -> store
    const imports = WebAssembly.Module.imports(module);
    this.wasiNames = imports.filter((i) => i.module === "wasi_snapshot_preview1").map((i) => i.name);
    this.ferryNames = new Set(imports.filter((i) => i.module === "ferry").map((i) => i.name));
    this.exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    this.command = this.exports.has("_start");
    this.async = ["state_get", "http_request"].some((n) => this.ferryNames.has(n));
    this.stateful = ["state_get", "state_set", "state_delete"].some((n) => this.ferryNames.has(n));
    this.reuse = cfg.pure && !this.command && !cfg.fresh_instances;
    this.warm = null; // a pure reactor's kept instance
    this.turn = Promise.resolve(); // the tail of the conflict queue
    this.waiting = 0;
    this.instances = 0;
    this.invocations = 0;
    this.lastInvocation = null;
    this.allow = (cfg.allow_hosts || []).map(parseAllow);
  }

  // invoke runs the job once. It resolves to the result or throws a
  // JobFailure.
  async invoke(input, { invocationId, idempotencyKey }) {
    const cfg = this.cfg;
    if (input.length > cfg.max_input_bytes) {
      throw new JobFailure("input_too_large", `input of ${input.length} bytes is over the limit of ${cfg.max_input_bytes} bytes`, { limit: cfg.max_input_bytes });
    }
    this.invocations++;
    this.lastInvocation = new Date();
    const started = performance.now();
    const deadline = Date.now() + cfg.timeout_ms;
    let store = null;
    if (this.stateful && this.state) store = this.state(cfg.state_namespace);
    if (store && idempotencyKey) {
      const out = await store.recall(idempotencyKey);
      if (out) return { output: out, logs: [], durationUs: 1, memoryBytes: 0, cold: false, replayed: true };
    }
    if (!store) {
      const inv = new Invocation(this, invocationId, deadline, null);
      return this.result(await this.run(inv, input), inv, started);
    }
    for (let attempt = 1; ; attempt++) {
      // After a conflict the job's attempts take turns in this isolate, and
      // new calls queue behind them while any wait: a hot key becomes a
      // queue instead of a storm of re-runs (as in Ferry's Go runtime).
      const once = async () => {
        const inv = new Invocation(this, invocationId, deadline, store);
        const res = await this.run(inv, input);
        return { inv, res, c: await inv.commit(res.output, idempotencyKey) };
      };
      const { inv, res, c } = attempt > 1 || this.waiting > 0 ? await this.inTurn(once) : await once();
      if (c.ok) return this.result(res, inv, started);
      if (c.replay) return { output: c.replay, logs: inv.logs, durationUs: 1, memoryBytes: 0, cold: false, replayed: true };
      // A key the job read changed: run again on the new state.
      if (attempt >= cfg.max_state_attempts) {
        throw new JobFailure("host", `state conflict on ${attempt} attempts in a row (key ${JSON.stringify(c.conflict)}); giving up`);
      }
      if (Date.now() >= deadline) {
        throw new JobFailure("timeout", `timed out after ${cfg.timeout_ms} ms (timeout limit) while retrying state conflicts`, { limit: cfg.timeout_ms });
      }
      // A conflict inside the queue comes from another isolate: back off.
      if (attempt > 1) await sleep(Math.random() * Math.min(50, attempt * 2));
    }
  }

  // inTurn runs fn when the calls queued before it have finished.
  async inTurn(fn) {
    this.waiting++;
    const prev = this.turn;
    let done;
    this.turn = new Promise((r) => (done = r));
    try {
      await prev;
      return await fn();
    } finally {
      this.waiting--;
      done();
    }
  }

  result(res, inv, started) {
    return {
      output: res.output,
      logs: inv.logs,
      durationUs: Math.max(1, Math.round((performance.now() - started) * 1000)),
      memoryBytes: res.memoryBytes,
      cold: res.cold,
    };
  }

  // run instantiates (or reuses) an instance and calls into it.
  async run(inv, input) {
    let inst = null;
    let cold = false;
    if (this.reuse && this.warm) {
      inst = this.warm;
      this.warm = null;
    } else {
      cold = this.instances === 0;
      inst = this.instantiate();
    }
    inst.slot.inv = inv;
    inst.wasi.stdin = this.command ? input : new Uint8Array(0);
    inst.wasi.stdinPos = 0;
    try {
      const output = this.command ? await this.runCommand(inst, inv) : await this.runReactor(inst, inv, input);
      if (output.length > this.cfg.max_output_bytes) {
        throw new JobFailure("output_too_large", `output of ${output.length} bytes is over the limit of ${this.cfg.max_output_bytes} bytes`, { limit: this.cfg.max_output_bytes });
      }
      const memoryBytes = inst.memory.buffer.byteLength;
      inst.slot.inv = null;
      if (this.reuse) this.warm = inst;
      return { output, memoryBytes, cold };
    } catch (e) {
      inst.slot.inv = null;
      throw this.classify(e, inst, inv);
    } finally {
      inv.flush();
    }
  }

  async runReactor(inst, inv, input) {
    const x = inst.exports;
    const ptr = x.ferry_alloc(input.length) >>> 0;
    if (ptr === 0 && input.length > 0) throw new JobFailure("abi_violation", "ferry_alloc returned 0 (allocation failed)");
    if (ptr + input.length > inst.memory.buffer.byteLength) {
      throw new JobFailure("abi_violation", `ferry_alloc returned ${ptr}, outside memory for ${input.length} bytes`);
    }
    new Uint8Array(inst.memory.buffer, ptr, input.length).set(input);
    let packed = this.async ? await inst.run(ptr, input.length) : inst.run(ptr, input.length);
    if (inv.guestErr !== null) throw new JobFailure("guest_error", "guest error: " + inv.guestErr);
    packed = BigInt.asUintN(64, BigInt(packed));
    const outPtr = Number(packed >> 32n);
    const outLen = Number(packed & 0xffffffffn);
    const mem = inst.memory.buffer;
    if (outPtr + outLen > mem.byteLength) {
      throw new JobFailure("abi_violation", `output range [${outPtr}, ${outPtr + outLen}) is outside the guest's ${mem.byteLength}-byte memory`);
    }
    return new Uint8Array(mem, outPtr, outLen).slice();
  }

  async runCommand(inst, inv) {
    try {
      if (this.async) await inst.run();
      else inst.run();
    } catch (e) {
      if (!(e instanceof ExitError) || e.code !== 0) throw e;
    }
    if (inv.guestErr !== null) throw new JobFailure("guest_error", "guest error: " + inv.guestErr);
    return concat(inv.stdout);
  }

  instantiate() {
    const slot = { inv: null, memory: null };
    const wasi = new Wasi({
      deterministic: this.cfg.deterministic,
      seed: this.cfg.seed,
      stdout: (b) => slot.inv && (this.command ? slot.inv.stdout.push(b) : slot.inv.stream("stdout", b)),
      stderr: (b) => slot.inv && slot.inv.stream("stderr", b),
    });
    const tick = new WebAssembly.Instance(this.tickModule, {
      env: {
        tick: () => {
          if (slot.inv && Date.now() > slot.inv.deadline) {
            // The stop flag too: a guest may catch the exception, but
            // not the trap at its next check.
            slot.inv.timedOut = true;
            if (slot.stop) slot.stop.value = 1;
            throw new Timeout();
          }
        },
      },
    });
    const inst = new WebAssembly.Instance(this.module, {
      wasi_snapshot_preview1: wasi.imports(this.wasiNames),
      ferry: ferryImports(slot, this.async),
    });
    this.instances++;
    const x = inst.exports;
    wasi.memory = x.memory;
    slot.memory = x.memory;
    slot.stop = x.__ferry_stop;
    if (x.__ferry_tick) x.__ferry_tick.set(0, tick.exports.tick);
    const entry = this.command ? x._start : x.ferry_run;
    const out = { exports: x, memory: x.memory, wasi, slot, run: this.async ? WebAssembly.promising(entry) : entry };
    if (!this.command && x._initialize) {
      try {
        x._initialize();
      } catch (e) {
        throw this.classify(e, out, null);
      }
    }
    return out;
  }

  // classify turns what the guest threw into a JobFailure.
  classify(e, inst, inv) {
    if (e instanceof JobFailure) return e;
    if (e instanceof Timeout || (inv && inv.timedOut)) {
      return new JobFailure("timeout", `timed out after ${this.cfg.timeout_ms} ms (timeout limit); the guest was interrupted`, { limit: this.cfg.timeout_ms });
    }
    if (this.memoryLimitHit(inst)) {
      return new JobFailure("memory_limit", `memory limit of ${this.cfg.memory_mb} MiB exceeded (the guest tried to grow its memory past it, then failed: ${describe(e)})`, { limit: this.cfg.memory_mb * 1048576 });
    }
    if (e instanceof ExitError) return new JobFailure("exit", `exited with status ${e.code}`, { exitCode: e.code });
    if (inv && inv.guestErr !== null) return new JobFailure("guest_error", "guest error: " + inv.guestErr);
    if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) {
      const trap = trapKind(String(e.message));
      return new JobFailure("trap", `trapped: ${trapText[trap] || e.message}`, { trap, detail: String(e.stack || e.message) });
    }
    return new JobFailure("host", `host failure: ${describe(e)}`);
  }

  // memoryLimitHit reports whether a failure is the memory limit's doing.
  // The module's memory maximum is the limit (instrument.CapMemory), so a
  // refused memory.grow returns -1 inside the guest and JavaScript is not
  // told; a failure with the memory within one growth step of the limit
  // (a sixteenth of it, at least 1 MiB) is taken to be one.
  memoryLimitHit(inst) {
    if (!inst || !inst.memory) return false;
    const max = this.cfg.memory_mb * 1048576;
    return inst.memory.buffer.byteLength + Math.max(1048576, max / 16) > max;
  }
}

// Invocation is one attempt's host-side state: logs, the pending result,
// budgets, and the state transaction.
class Invocation {
  constructor(job, id, deadline, store) {
    this.job = job;
    this.cfg = job.cfg;
    this.id = id;
    this.deadline = deadline;
    this.store = store;
    this.logs = [];
    this.logBytes = 0;
    this.logDrop = false;
    this.stdout = [];
    this.streams = { stdout: "", stderr: "" };
    this.pending = null;
    this.guestErr = null;
    this.hostCalls = 0;
    this.httpCalls = 0;
    this.reads = new Map(); // key -> {value, version}
    this.writes = new Map(); // key -> Uint8Array | null
    this.writeBytes = 0;
  }

  emit(level, source, msg) {
    if (this.logDrop) return;
    if (this.logBytes + msg.length > this.cfg.max_log_bytes) {
      this.logDrop = true;
      console.warn(JSON.stringify({ job: this.cfg.job, invocation_id: this.id, level: "warn", msg: "guest log limit reached; dropping the rest", limit_bytes: this.cfg.max_log_bytes }));
      return;
    }
    this.logBytes += msg.length;
    this.logs.push(msg);
    console.log(JSON.stringify({ job: this.cfg.job, invocation_id: this.id, level, source, msg }));
  }

  stream(name, bytes) {
    let s = this.streams[name] + lossy.decode(bytes);
    for (let i; (i = s.indexOf("\n")) >= 0; s = s.slice(i + 1)) this.emit("info", name, s.slice(0, i));
    if (s.length > MAX_LOG_LINE) {
      this.emit("info", name, s);
      s = "";
    }
    this.streams[name] = s;
  }

  flush() {
    for (const name of ["stdout", "stderr"]) {
      if (this.streams[name]) this.emit("info", name, this.streams[name]);
      this.streams[name] = "";
    }
  }

  // call counts a state or HTTP call; it returns a status code when over
  // budget.
  call() {
    this.hostCalls++;
    return this.hostCalls > this.cfg.max_host_calls ? RATE_LIMITED : 0;
  }

  // commit writes the transaction: only if no key the job read has changed.
  async commit(output, idempotencyKey) {
    const many = this.reads.size > 1;
    if (this.writes.size === 0 && !many && !idempotencyKey) return { ok: true };
    const reads = [...this.reads].map(([k, r]) => [k, r.version]);
    const writes = [...this.writes];
    const idem = idempotencyKey ? { key: idempotencyKey, output } : null;
    try {
      return await this.store.commit({ reads, writes, idem });
    } catch (e) {
      throw new JobFailure("host", `state commit failed: ${describe(e)}`);
    }
  }
}

// ferryImports builds the `ferry` namespace for one instance. slot.inv is
// the invocation in progress, null outside one (e.g. during _initialize),
// where state and HTTP calls are denied; slot.memory is the instance's
// memory, set once it exists.
function ferryImports(slot, suspending) {
  const wrap = (fn) => (suspending ? new WebAssembly.Suspending(fn) : fn);
  const bytesAt = (_inv, ptr, len) => {
    const buf = slot.memory.buffer;
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > buf.byteLength) return null;
    return new Uint8Array(buf, ptr, len);
  };
  const key = (inv, ptr, len) => {
    const b = bytesAt(inv, ptr, len);
    if (!b || len === 0) return [null, INVALID];
    if (len > inv.cfg.max_state_key_bytes) return [null, TOO_LARGE];
    try {
      return [utf8.decode(b), 0];
    } catch {
      return [null, INVALID];
    }
  };
  const ns = {
    log: (level, ptr, len) => {
      const inv = slot.inv;
      if (!inv) return;
      const b = bytesAt(inv, ptr, Math.min(len >>> 0, MAX_LOG_LINE));
      if (b) inv.emit(LEVELS[level] || "info", "ferry.log", lossy.decode(b));
    },
    error: (ptr, len) => {
      const inv = slot.inv;
      if (!inv) return;
      const b = bytesAt(inv, ptr, Math.min(len >>> 0, MAX_LOG_LINE));
      inv.guestErr = b ? lossy.decode(b) || "(no message)" : "(error message out of bounds)";
    },
    take: (ptr, cap) => {
      const inv = slot.inv;
      if (!inv) return INVALID;
      const p = inv.pending || new Uint8Array(0);
      const n = Math.min(cap >>> 0, p.length);
      const b = bytesAt(inv, ptr, n);
      if (!b) return INVALID;
      b.set(p.subarray(0, n));
      inv.pending = null;
      return n;
    },
    state_get: wrap((kptr, klen) => {
      const inv = slot.inv;
      if (!inv || !inv.store) return DENIED;
      const over = inv.call();
      if (over) return over;
      const [k, code] = key(inv, kptr, klen);
      if (code) return code;
      const found = (v) => {
        if (v === null) return NOT_FOUND;
        inv.pending = v;
        return v.length;
      };
      if (inv.writes.has(k)) return found(inv.writes.get(k));
      if (inv.reads.has(k)) return found(inv.reads.get(k).value);
      return guard(inv, inv.store.read(k)).then(
        (r) => {
          slot.inv = inv;
          inv.reads.set(k, r);
          return found(r.value);
        },
        (e) => {
          slot.inv = inv;
          if (e instanceof Timeout) throw e;
          inv.emit("warn", "ferry", `state_get failed: ${describe(e)}`);
          return FAILED;
        },
      );
    }),
    state_set: (kptr, klen, vptr, vlen) => {
      const inv = slot.inv;
      if (!inv || !inv.store) return DENIED;
      const over = inv.call();
      if (over) return over;
      const [k, code] = key(inv, kptr, klen);
      if (code) return code;
      const v = bytesAt(inv, vptr, vlen);
      if (!v) return INVALID;
      if (v.length > inv.cfg.max_state_value_bytes) return TOO_LARGE;
      if (inv.writeBytes + k.length + v.length > inv.cfg.max_state_write_bytes) return TOO_LARGE;
      inv.writeBytes += k.length + v.length;
      inv.writes.set(k, v.slice());
      return 0;
    },
    state_delete: (kptr, klen) => {
      const inv = slot.inv;
      if (!inv || !inv.store) return DENIED;
      const over = inv.call();
      if (over) return over;
      const [k, code] = key(inv, kptr, klen);
      if (code) return code;
      inv.writes.set(k, null);
      return 0;
    },
    http_request: wrap((ptr, len) => {
      const inv = slot.inv;
      if (!inv) return DENIED;
      const over = inv.call();
      if (over) return over;
      const raw = bytesAt(inv, ptr, len);
      if (!raw) return INVALID;
      let req;
      try {
        req = decodeRequest(raw);
      } catch (e) {
        inv.emit("warn", "ferry", `http_request: malformed request: ${e.message}`);
        return INVALID;
      }
      if (!allowed(inv.job.allow, req.url)) {
        inv.emit("warn", "ferry", `http_request: host not allowed: ${req.url.host}`);
        return DENIED;
      }
      if (++inv.httpCalls > inv.cfg.max_http_requests) return RATE_LIMITED;
      return guard(inv, doFetch(inv, req)).then(
        (r) => {
          slot.inv = inv;
          if (typeof r === "number") return r;
          inv.pending = r;
          return r.length;
        },
        (e) => {
          slot.inv = inv;
          if (e instanceof Timeout) throw e;
          inv.emit("warn", "ferry", `http_request failed: ${describe(e)}`);
          return FAILED;
        },
      );
    }),
  };
  return ns;
}

// guard races a host call against the invocation's deadline.
function guard(inv, p) {
  const left = inv.deadline - Date.now();
  if (left <= 0) return Promise.reject(new Timeout());
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Timeout()), left);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function doFetch(inv, req) {
  let url = req.url;
  let method = req.method;
  let body = req.body.length > 0 && method !== "GET" && method !== "HEAD" ? req.body : undefined;
  for (let hop = 0; ; hop++) {
    const resp = await fetch(url.href, {
      method,
      headers: req.headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(inv.cfg.http_timeout_ms),
    });
    const loc = resp.headers.get("location");
    if (resp.status >= 300 && resp.status < 400 && loc) {
      await resp.body?.cancel();
      if (hop >= 5) {
        inv.emit("warn", "ferry", "http_request: more than 5 redirects");
        return FAILED;
      }
      url = new URL(loc, url);
      if (!allowed(inv.job.allow, url)) {
        inv.emit("warn", "ferry", `http_request: redirect to ${url.host}: host not allowed`);
        return FAILED;
      }
      if (resp.status === 303 || ((resp.status === 301 || resp.status === 302) && method === "POST")) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    const limit = inv.cfg.max_http_response_bytes;
    const chunks = [];
    let n = 0;
    if (resp.body) {
      const reader = resp.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.length;
        if (n > limit) {
          await reader.cancel();
          return TOO_LARGE;
        }
        chunks.push(value);
      }
    }
    return encodeResponse(resp, concat(chunks));
  }
}

// decodeRequest reads the ABI's request record: method, url, header count,
// name/value pairs, body; each string a u32 length then bytes.
function decodeRequest(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  const u32 = () => {
    if (p + 4 > b.length) throw new Error("truncated");
    const x = v.getUint32(p, true);
    p += 4;
    return x;
  };
  const str = () => {
    const n = u32();
    if (p + n > b.length) throw new Error("truncated");
    const s = b.subarray(p, p + n);
    p += n;
    return s;
  };
  const method = lossy.decode(str());
  const rawURL = lossy.decode(str());
  const nh = u32();
  if (nh * 8 > b.length - p) throw new Error("header count does not fit");
  const headers = new Headers();
  for (let i = 0; i < nh; i++) {
    const k = lossy.decode(str());
    headers.set(k, lossy.decode(str()));
  }
  const body = str().slice();
  if (p !== b.length) throw new Error(`${b.length - p} trailing bytes`);
  if (!METHODS.has(method)) throw new Error(`method ${JSON.stringify(method)} not allowed`);
  let url;
  try {
    url = new URL(rawURL);
  } catch {
    throw new Error(`bad url ${JSON.stringify(rawURL)}`);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) throw new Error(`bad url ${JSON.stringify(rawURL)}`);
  return { method, url, headers, body };
}

function encodeResponse(resp, body) {
  const hs = [];
  resp.headers.forEach((value, name) => hs.push([enc.encode(name), enc.encode(value)]));
  let size = 8 + 4 + body.length;
  for (const [k, v] of hs) size += 8 + k.length + v.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let p = 0;
  const u32 = (x) => {
    v.setUint32(p, x, true);
    p += 4;
  };
  const str = (s) => {
    u32(s.length);
    out.set(s, p);
    p += s.length;
  };
  u32(resp.status);
  u32(hs.length);
  for (const [k, val] of hs) {
    str(k);
    str(val);
  }
  str(body);
  return out;
}

// parseAllow reads one allow-list entry: host, host:port or *.domain.
function parseAllow(h) {
  h = h.toLowerCase();
  let port = "";
  const i = h.lastIndexOf(":");
  if (i > 0 && /^\d+$/.test(h.slice(i + 1))) {
    port = h.slice(i + 1);
    h = h.slice(0, i);
  }
  if (h.startsWith("*.")) return { host: h.slice(2), port, wildcard: true };
  return { host: h, port, wildcard: false };
}

function allowed(list, url) {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return list.some((e) => (!e.port || e.port === port) && (e.wildcard ? host.endsWith("." + e.host) : host === e.host));
}

const trapText = {
  unreachable: "unreachable instruction executed",
  stack_overflow: "stack overflow (call depth limit)",
  out_of_bounds_memory: "out-of-bounds memory access",
  integer_divide_by_zero: "integer divide by zero",
  integer_overflow: "integer overflow",
  invalid_conversion: "invalid conversion to integer",
  indirect_call: "indirect call type mismatch",
  table_access: "out-of-bounds table access",
};

// trapKind maps V8's trap messages to Ferry's trap kinds.
function trapKind(msg) {
  const m = msg.toLowerCase();
  if (m.includes("unreachable")) return "unreachable";
  if (m.includes("call stack") || m.includes("stack overflow")) return "stack_overflow";
  if (m.includes("memory access out of bounds") || m.includes("out of bounds memory")) return "out_of_bounds_memory";
  if (m.includes("divide by zero") || m.includes("remainder by zero")) return "integer_divide_by_zero";
  if (m.includes("unrepresentable") || m.includes("float")) return "invalid_conversion";
  if (m.includes("integer overflow")) return "integer_overflow";
  if (m.includes("signature mismatch") || m.includes("null function")) return "indirect_call";
  if (m.includes("table")) return "table_access";
  return "other";
}

function describe(e) {
  return e && e.message ? e.message : String(e);
}

function concat(chunks) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
