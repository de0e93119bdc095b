// ChaCha8 random bytes, byte-identical to Go's math/rand/v2 (*ChaCha8).Read.
//
// Ferry serves WASI random_get from a seeded ChaCha8 so a job is
// deterministic (runtime/engine/wazero.go, newSeededReader). This module is a
// dependency-free port of that generator for Cloudflare Workers, so a job
// produces the same bytes there as under wazero.
//
// It mirrors, from the Go source tree:
//   - internal/chacha8rand/chacha8_generic.go: setup, block_generic, qr
//   - internal/chacha8rand/chacha8.go:         State (Init, Next, Refill)
//   - math/rand/v2/chacha8.go:                 ChaCha8.Read
// All hot-path arithmetic is on 32-bit words; BigInt is used only in seedBytes.

// internal/chacha8rand constants.
const CTR_INC = 4; // counter advance between block calls
const CTR_MAX = 16; // reseed when the counter reaches this
const CHUNK = 32; // uint64s produced per block call
const RESEED = 4; // uint64s taken from the end of the last chunk as the new seed

// qr-based ChaCha8 over 4 interlaced blocks: the JS form of block_generic.
//
// `out` is Go's buf viewed as b [16][4]uint32, flattened: out[row*4 + i] is
// row `row` of block i. `seed` holds the four uint64 seed words as eight
// uint32 words, low half first (seed[2k] = uint32(s[k]), seed[2k+1] =
// uint32(s[k]>>32)), which is exactly setup's rows 4..11.
function block(seed, out, counter) {
  for (let i = 0; i < 4; i++) {
    // setup: constants "expand 32-byte k", seed, counter+i, zeros.
    let b0 = 0x61707865, b1 = 0x3320646e, b2 = 0x79622d32, b3 = 0x6b206574;
    let b4 = seed[0], b5 = seed[1], b6 = seed[2], b7 = seed[3];
    let b8 = seed[4], b9 = seed[5], b10 = seed[6], b11 = seed[7];
    let b12 = (counter + i) | 0, b13 = 0, b14 = 0, b15 = 0;

    // 4 iterations of eight quarter-rounds each is 8 rounds. qr is inlined:
    //   a += b; d ^= a; d <<<= 16; c += d; b ^= c; b <<<= 12;
    //   a += b; d ^= a; d <<<= 8;  c += d; b ^= c; b <<<= 7
    // Values are kept as int32 (| 0); rotations use >>> so no sign leaks in.
    for (let round = 0; round < 4; round++) {
      // Columns: qr(b0,b4,b8,b12) qr(b1,b5,b9,b13) qr(b2,b6,b10,b14) qr(b3,b7,b11,b15)
      b0 = (b0 + b4) | 0; b12 ^= b0; b12 = (b12 << 16) | (b12 >>> 16);
      b8 = (b8 + b12) | 0; b4 ^= b8; b4 = (b4 << 12) | (b4 >>> 20);
      b0 = (b0 + b4) | 0; b12 ^= b0; b12 = (b12 << 8) | (b12 >>> 24);
      b8 = (b8 + b12) | 0; b4 ^= b8; b4 = (b4 << 7) | (b4 >>> 25);

      b1 = (b1 + b5) | 0; b13 ^= b1; b13 = (b13 << 16) | (b13 >>> 16);
      b9 = (b9 + b13) | 0; b5 ^= b9; b5 = (b5 << 12) | (b5 >>> 20);
      b1 = (b1 + b5) | 0; b13 ^= b1; b13 = (b13 << 8) | (b13 >>> 24);
      b9 = (b9 + b13) | 0; b5 ^= b9; b5 = (b5 << 7) | (b5 >>> 25);

      b2 = (b2 + b6) | 0; b14 ^= b2; b14 = (b14 << 16) | (b14 >>> 16);
      b10 = (b10 + b14) | 0; b6 ^= b10; b6 = (b6 << 12) | (b6 >>> 20);
      b2 = (b2 + b6) | 0; b14 ^= b2; b14 = (b14 << 8) | (b14 >>> 24);
      b10 = (b10 + b14) | 0; b6 ^= b10; b6 = (b6 << 7) | (b6 >>> 25);

      b3 = (b3 + b7) | 0; b15 ^= b3; b15 = (b15 << 16) | (b15 >>> 16);
      b11 = (b11 + b15) | 0; b7 ^= b11; b7 = (b7 << 12) | (b7 >>> 20);
      b3 = (b3 + b7) | 0; b15 ^= b3; b15 = (b15 << 8) | (b15 >>> 24);
      b11 = (b11 + b15) | 0; b7 ^= b11; b7 = (b7 << 7) | (b7 >>> 25);

      // Diagonals: qr(b0,b5,b10,b15) qr(b1,b6,b11,b12) qr(b2,b7,b8,b13) qr(b3,b4,b9,b14)
      b0 = (b0 + b5) | 0; b15 ^= b0; b15 = (b15 << 16) | (b15 >>> 16);
      b10 = (b10 + b15) | 0; b5 ^= b10; b5 = (b5 << 12) | (b5 >>> 20);
      b0 = (b0 + b5) | 0; b15 ^= b0; b15 = (b15 << 8) | (b15 >>> 24);
      b10 = (b10 + b15) | 0; b5 ^= b10; b5 = (b5 << 7) | (b5 >>> 25);

      b1 = (b1 + b6) | 0; b12 ^= b1; b12 = (b12 << 16) | (b12 >>> 16);
      b11 = (b11 + b12) | 0; b6 ^= b11; b6 = (b6 << 12) | (b6 >>> 20);
      b1 = (b1 + b6) | 0; b12 ^= b1; b12 = (b12 << 8) | (b12 >>> 24);
      b11 = (b11 + b12) | 0; b6 ^= b11; b6 = (b6 << 7) | (b6 >>> 25);

      b2 = (b2 + b7) | 0; b13 ^= b2; b13 = (b13 << 16) | (b13 >>> 16);
      b8 = (b8 + b13) | 0; b7 ^= b8; b7 = (b7 << 12) | (b7 >>> 20);
      b2 = (b2 + b7) | 0; b13 ^= b2; b13 = (b13 << 8) | (b13 >>> 24);
      b8 = (b8 + b13) | 0; b7 ^= b8; b7 = (b7 << 7) | (b7 >>> 25);

      b3 = (b3 + b4) | 0; b14 ^= b3; b14 = (b14 << 16) | (b14 >>> 16);
      b9 = (b9 + b14) | 0; b4 ^= b9; b4 = (b4 << 12) | (b4 >>> 20);
      b3 = (b3 + b4) | 0; b14 ^= b3; b14 = (b14 << 8) | (b14 >>> 24);
      b9 = (b9 + b14) | 0; b4 ^= b9; b4 = (b4 << 7) | (b4 >>> 25);
    }

    // Store block i back into b[*][i]: rows 4..11 are added to the key
    // material (the seed), the other rows are stored as is.
    out[i] = b0;
    out[4 + i] = b1;
    out[8 + i] = b2;
    out[12 + i] = b3;
    out[16 + i] = b4 + seed[0];
    out[20 + i] = b5 + seed[1];
    out[24 + i] = b6 + seed[2];
    out[28 + i] = b7 + seed[3];
    out[32 + i] = b8 + seed[4];
    out[36 + i] = b9 + seed[5];
    out[40 + i] = b10 + seed[6];
    out[44 + i] = b11 + seed[7];
    out[48 + i] = b12;
    out[52 + i] = b13;
    out[56 + i] = b14;
    out[60 + i] = b15;
  }
}

export class ChaCha8 {
  // NewChaCha8(seed) = State.Init(seed) with an empty read buffer.
  constructor(seed) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new TypeError("ChaCha8: seed must be a Uint8Array of 32 bytes");
    }
    // State.seed [4]uint64 as 8 little-endian uint32 halves (State.Init
    // reads the seed bytes as little-endian uint64s).
    this.seed = new Uint32Array(8);
    for (let k = 0; k < 8; k++) {
      const o = 4 * k;
      this.seed[k] = seed[o] | (seed[o + 1] << 8) | (seed[o + 2] << 16) | (seed[o + 3] << 24);
    }
    // State.buf [32]uint64, viewed as 64 uint32 words (uint64 j is words
    // 2j (low) and 2j+1 (high), as on a little-endian machine) ...
    this.words = new Uint32Array(64);
    // ... and as the 256 bytes Read emits, each uint64 little-endian.
    this.bytes = new Uint8Array(256);
    // State.c: the block counter.
    this.c = 0;
    // Read position in this.bytes and its end (State.i*8 and State.n*8).
    //
    // Go's Read takes whole uint64s from State.Next, stores a partially used
    // one in readBuf, and hands out its remaining bytes on the next Read.
    // Those remaining bytes are exactly the next bytes of the uint64 in buf,
    // and a refill only happens when a new uint64 is needed, so a byte cursor
    // into buf is the same stream: pos rounded up to 8 is State.i, and
    // (8 - pos % 8) % 8 is readLen.
    this.pos = 0;
    this.end = 0;
    // Init64: block(&s.seed, &s.buf, 0); c = 0; i = 0; n = chunk.
    this._block();
    this.end = CHUNK * 8;
  }

  // block into this.words, then lay the uint64s out as little-endian bytes
  // (explicitly, so the result does not depend on the platform's byte order).
  _block() {
    const w = this.words, b = this.bytes;
    block(this.seed, w, this.c);
    for (let k = 0, o = 0; k < 64; k++, o += 4) {
      const x = w[k];
      b[o] = x;
      b[o + 1] = x >>> 8;
      b[o + 2] = x >>> 16;
      b[o + 3] = x >>> 24;
    }
  }

  // State.Refill.
  _refill() {
    this.c += CTR_INC;
    if (this.c === CTR_MAX) {
      // Reseed with the last RESEED uint64s of the previous chunk
      // (s.seed[j] = s.buf[len(s.buf)-reseed+j]), i.e. words 56..63.
      this.seed.set(this.words.subarray(2 * (CHUNK - RESEED)));
      this.c = 0;
    }
    this._block();
    this.pos = 0;
    this.end = CHUNK * 8;
    if (this.c === CTR_MAX - CTR_INC) {
      // The last chunk before a reseed keeps its final 4 uint64s for the seed.
      this.end = (CHUNK - RESEED) * 8;
    }
  }

  // (*ChaCha8).Read: fills buf completely (Go's Read always returns len(p)).
  read(buf) {
    let off = 0;
    const n = buf.length;
    while (off < n) {
      if (this.pos >= this.end) {
        // Uint64: Next failed, so Refill and try again. pos is a multiple of
        // 8 here: a partially consumed uint64 always has bytes left.
        this._refill();
      }
      const take = Math.min(n - off, this.end - this.pos);
      buf.set(this.bytes.subarray(this.pos, this.pos + take), off);
      this.pos += take;
      off += take;
    }
    return n;
  }
}

// The 32-byte seed newSeededReader builds: the job seed as a little-endian
// uint64 in bytes 0..7, then 24 zero bytes.
//
// jobSeed is a BigInt or a Number in [0, 2^64). Numbers above 2^53 are not
// all representable, so pass large seeds (e.g. 2^64-1) as BigInt.
export function seedBytes(jobSeed) {
  let v;
  if (typeof jobSeed === "bigint") {
    v = jobSeed;
  } else if (typeof jobSeed === "number" && Number.isInteger(jobSeed)) {
    v = BigInt(jobSeed);
  } else {
    throw new TypeError("seedBytes: job seed must be an integer Number or a BigInt");
  }
  if (v < 0n || v > 0xffffffffffffffffn) {
    throw new RangeError("seedBytes: job seed must be a uint64");
  }
  const s = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    s[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  }
  return s;
}
