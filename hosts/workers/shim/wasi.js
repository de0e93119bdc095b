// A minimal WASI preview 1 for Ferry jobs: what the ABI needs and nothing
// more (docs/abi.md, "WASI and determinism"). Stdin is the command's input,
// stdout its output (a reactor's stdout and stderr go to the log), no
// arguments, no environment, no preopened directories. Every other WASI
// function the module imports answers ENOSYS, so any WASI program links.
//
// Deterministic mode mirrors wazero's defaults, so a job gives the same bytes
// here as in `ferry run`: the wall clock starts at 2022-01-01T00:00:00Z and
// the monotonic clock at 0, each advancing 1 ms per reading; sleeping returns
// at once; random_get is Go's ChaCha8 from the job's seed.

import { ChaCha8, seedBytes } from "./chacha8.js";

const ESUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
const ENOSYS = 52;
const ESPIPE = 70;

const FAKE_EPOCH_NS = 1640995200000n * 1000000n;
const MS = 1000000n;

// ExitError is proc_exit: it unwinds the guest.
export class ExitError extends Error {
  constructor(code) {
    super(`exited with status ${code}`);
    this.code = code;
  }
}

// Wasi serves one instance. memory() returns the instance's memory, which
// is only known after instantiation.
export class Wasi {
  constructor({ deterministic, seed, stdin, stdout, stderr }) {
    this.deterministic = deterministic;
    this.stdin = stdin || new Uint8Array(0);
    this.stdinPos = 0;
    this.stdout = stdout; // (Uint8Array) => void
    this.stderr = stderr;
    this.memory = null;
    this.rng = deterministic ? new ChaCha8(seedBytes(seed || 0)) : null;
    this.wall = FAKE_EPOCH_NS - MS;
    this.mono = -MS;
  }

  view() {
    return new DataView(this.memory.buffer);
  }

  bytes(ptr, len) {
    const buf = this.memory.buffer;
    if (ptr < 0 || len < 0 || ptr + len > buf.byteLength) return null;
    return new Uint8Array(buf, ptr, len);
  }

  now(id) {
    if (this.deterministic) {
      if (id === 0) return (this.wall += MS);
      return (this.mono += MS);
    }
    if (id === 0) return BigInt(Date.now()) * MS;
    return BigInt(Math.round(performance.now() * 1e6));
  }

  // imports returns the wasi_snapshot_preview1 namespace for the names the
  // module imports.
  imports(names) {
    const impl = {
      args_sizes_get: (argc, bufSize) => this.zeroPair(argc, bufSize),
      environ_sizes_get: (n, bufSize) => this.zeroPair(n, bufSize),
      args_get: () => ESUCCESS,
      environ_get: () => ESUCCESS,
      clock_res_get: (id, out) => {
        if (id < 0 || id > 3) return EINVAL;
        this.view().setBigUint64(out, this.deterministic ? MS : 1000n, true);
        return ESUCCESS;
      },
      clock_time_get: (id, _precision, out) => {
        if (id < 0 || id > 3) return EINVAL;
        this.view().setBigUint64(out, this.now(id), true);
        return ESUCCESS;
      },
      random_get: (ptr, len) => {
        const b = this.bytes(ptr, len);
        if (!b) return EINVAL;
        if (this.rng) this.rng.read(b);
        else {
          // getRandomValues takes at most 64 KiB per call.
          for (let i = 0; i < len; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(len, i + 65536)));
        }
        return ESUCCESS;
      },
      fd_write: (fd, iovs, iovsLen, nwritten) => {
        if (fd !== 1 && fd !== 2) return EBADF;
        const sink = fd === 1 ? this.stdout : this.stderr;
        const v = this.view();
        let n = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = v.getUint32(iovs + i * 8, true);
          const len = v.getUint32(iovs + i * 8 + 4, true);
          const b = this.bytes(ptr, len);
          if (!b) return EINVAL;
          sink(b.slice());
          n += len;
        }
        v.setUint32(nwritten, n, true);
        return ESUCCESS;
      },
      fd_read: (fd, iovs, iovsLen, nread) => {
        if (fd !== 0) return EBADF;
        const v = this.view();
        let n = 0;
        for (let i = 0; i < iovsLen && this.stdinPos < this.stdin.length; i++) {
          const ptr = v.getUint32(iovs + i * 8, true);
          const len = v.getUint32(iovs + i * 8 + 4, true);
          const b = this.bytes(ptr, len);
          if (!b) return EINVAL;
          const chunk = this.stdin.subarray(this.stdinPos, this.stdinPos + len);
          b.set(chunk);
          this.stdinPos += chunk.length;
          n += chunk.length;
        }
        v.setUint32(nread, n, true);
        return ESUCCESS;
      },
      fd_fdstat_get: (fd, out) => {
        if (fd > 2) return EBADF;
        const v = this.view();
        // filetype character device, no flags, all rights.
        for (let i = 0; i < 24; i++) v.setUint8(out + i, 0);
        v.setUint8(out, 2);
        v.setBigUint64(out + 8, 0xffffffffn, true);
        v.setBigUint64(out + 16, 0xffffffffn, true);
        return ESUCCESS;
      },
      fd_fdstat_set_flags: (fd) => (fd > 2 ? EBADF : ESUCCESS),
      fd_prestat_get: () => EBADF, // no preopened directories
      fd_prestat_dir_name: () => EBADF,
      fd_close: (fd) => (fd > 2 ? EBADF : ESUCCESS),
      fd_seek: (fd) => (fd > 2 ? EBADF : ESPIPE),
      fd_sync: (fd) => (fd > 2 ? EBADF : ESUCCESS),
      sched_yield: () => ESUCCESS,
      poll_oneoff: (inPtr, outPtr, nsubs, nevents) => this.pollOneoff(inPtr, outPtr, nsubs, nevents),
      proc_exit: (code) => {
        throw new ExitError(code);
      },
    };
    const ns = {};
    for (const name of names) ns[name] = impl[name] || (() => ENOSYS);
    return ns;
  }

  zeroPair(a, b) {
    const v = this.view();
    v.setUint32(a, 0, true);
    v.setUint32(b, 0, true);
    return ESUCCESS;
  }

  // pollOneoff answers every subscription at once: clocks have expired
  // (sleeping returns at once, as with wazero's fake clocks; a real sleep
  // cannot block a Worker), stdin and stdout are always ready.
  pollOneoff(inPtr, outPtr, nsubs, nevents) {
    if (nsubs === 0) return EINVAL;
    const v = this.view();
    for (let i = 0; i < nsubs; i++) {
      const sub = inPtr + i * 48;
      const ev = outPtr + i * 32;
      v.setBigUint64(ev, v.getBigUint64(sub, true), true); // userdata
      v.setUint16(ev + 8, 0, true); // error
      const tag = v.getUint8(sub + 8);
      v.setUint8(ev + 10, tag); // type
      for (let j = 11; j < 32; j++) v.setUint8(ev + j, 0);
    }
    v.setUint32(nevents, nsubs, true);
    return ESUCCESS;
  }
}
