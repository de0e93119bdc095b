// Ferry's state store on Cloudflare: a Durable Object per state namespace
// (a job's name), holding versioned keys. The worker runs a job as an
// optimistic transaction (docs/abi.md, "State is transactional"): reads
// fetch a key and its version, writes are buffered, and on success commit
// sends the versions read and the writes. The object applies them only if
// no version changed; otherwise the worker runs the job again.
//
// A Durable Object is single-threaded and its storage calls hold other
// events at the input gate, so a commit's reads and checks are not
// interleaved with another commit. Its puts and deletes are issued without
// an await between them, so storage coalesces them into one atomic write.
// docs/rationale.md says why a Durable Object and not KV or the
// orchestrator's store.

import { DurableObject } from "cloudflare:workers";

const BATCH = 128; // keys per storage get/put/delete call
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

export class FerryState extends DurableObject {
  // read returns a key's value (null when absent) and version (0 when
  // absent).
  async read(key) {
    const r = await this.ctx.storage.get("k:" + key);
    return r ? { value: r.v, version: r.n } : { value: null, version: 0 };
  }

  // recall returns the output recorded under an idempotency key, or null.
  async recall(idem) {
    const r = await this.ctx.storage.get("i:" + idem);
    return r && r.exp > Date.now() ? r.out : null;
  }

  // commit applies a transaction: {reads: [[key, version]], writes:
  // [[key, value or null]], idem: {key, output} or null}. It answers {ok},
  // {conflict: key} when a key read has changed, or {replay: output} when
  // the idempotency key has committed already.
  async commit({ reads, writes, idem }) {
    const st = this.ctx.storage;
    if (idem) {
      const r = await st.get("i:" + idem.key);
      if (r && r.exp > Date.now()) return { replay: r.out };
    }
    for (let i = 0; i < reads.length; i += BATCH) {
      const part = reads.slice(i, i + BATCH);
      const cur = await st.get(part.map(([k]) => "k:" + k));
      for (const [k, version] of part) {
        const r = cur.get("k:" + k);
        if ((r ? r.n : 0) !== version) return { conflict: k };
      }
    }
    const seq = ((await st.get("seq")) || 0) + 1;
    const puts = [["seq", seq]];
    const dels = [];
    for (const [k, v] of writes) {
      if (v === null) dels.push("k:" + k);
      else puts.push(["k:" + k, { v, n: seq }]);
    }
    if (idem) puts.push(["i:" + idem.key, { out: idem.output, exp: Date.now() + IDEMPOTENCY_TTL_MS }]);
    // No await until every write is issued: they commit as one.
    const pending = [];
    for (let i = 0; i < puts.length; i += BATCH) pending.push(st.put(Object.fromEntries(puts.slice(i, i + BATCH))));
    for (let i = 0; i < dels.length; i += BATCH) pending.push(st.delete(dels.slice(i, i + BATCH)));
    if (idem) pending.push(this.scheduleSweep());
    await Promise.all(pending);
    return { ok: true };
  }

  async scheduleSweep() {
    if ((await this.ctx.storage.getAlarm()) === null) {
      await this.ctx.storage.setAlarm(Date.now() + IDEMPOTENCY_TTL_MS);
    }
  }

  // alarm removes expired idempotency records.
  async alarm() {
    const now = Date.now();
    const recs = await this.ctx.storage.list({ prefix: "i:" });
    const expired = [];
    let next = Infinity;
    for (const [k, r] of recs) {
      if (r.exp <= now) expired.push(k);
      else next = Math.min(next, r.exp);
    }
    for (let i = 0; i < expired.length; i += BATCH) await this.ctx.storage.delete(expired.slice(i, i + BATCH));
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
  }

  // fetch answers a plain GET of a key, for operators and tests:
  // /keys/<key> gives the value's bytes (404 when absent).
  async fetch(request) {
    const u = new URL(request.url);
    if (request.method === "GET" && u.pathname.startsWith("/keys/")) {
      const r = await this.read(decodeURIComponent(u.pathname.slice(6)));
      if (r.value === null) return new Response("not found\n", { status: 404 });
      return new Response(r.value, { headers: { "x-ferry-version": String(r.version) } });
    }
    return new Response("not found\n", { status: 404 });
  }
}

// The state worker's own entry point: the object above, and a health check.
export default {
  async fetch() {
    return Response.json({ status: "ok", service: "ferry-state" });
  },
};
