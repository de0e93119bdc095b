package shim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// driverJS runs each case of the spec (argv[2]) against chacha8.js (argv[3],
// a file URL) and prints, per case and seed, the hex of every read (or the
// SHA-256 of all of them when digest is set) plus the hex of seedBytes.
const driverJS = `
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
const { ChaCha8, seedBytes } = await import(process.argv[3]);
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
const out = {};
for (const c of spec.cases) {
  out[c.name] = {};
  for (const s of spec.seeds) {
    const big = BigInt(s);
    const seed = seedBytes(big);
    if (big <= BigInt(Number.MAX_SAFE_INTEGER) && hex(seedBytes(Number(big))) !== hex(seed)) {
      throw new Error("seedBytes(Number) != seedBytes(BigInt) for " + s);
    }
    const r = new ChaCha8(seed);
    const h = createHash("sha256");
    const reads = [];
    const t0 = performance.now();
    for (const n of c.sizes ?? []) {
      const buf = new Uint8Array(n);
      if (r.read(buf) !== n) throw new Error("short read");
      if (c.digest) h.update(buf); else reads.push(hex(buf));
    }
    out[c.name][s] = { seed: hex(seed), reads, digest: c.digest ? h.digest("hex") : "", ms: performance.now() - t0 };
  }
}
process.stdout.write(JSON.stringify(out));
`

type jsResult struct {
	Seed   string   `json:"seed"`
	Reads  []string `json:"reads"`
	Digest string   `json:"digest"`
	MS     float64  `json:"ms"`
}

// goSeed builds the seed as runtime/engine's newSeededReader does.
func goSeed(seed uint64) [32]byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return s
}

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func randomSizes(n, maxSize int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]int, n)
	for i := range s {
		s[i] = r.IntN(maxSize + 1)
	}
	return s
}

func TestChaCha8MatchesGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH; skipping the JavaScript ChaCha8 comparison")
	}
	shim, err := filepath.Abs("chacha8.js")
	require.NoError(t, err)

	// One uint64 buffer is 256 bytes; a reseed cycle is 3*256 + 224 = 992 bytes.
	cases := []struct {
		name   string
		sizes  []int
		digest bool // compare a SHA-256 of the output instead of every byte
	}{
		{name: "no reads", sizes: nil},
		{name: "zero-length reads", sizes: []int{0, 0, 0}},
		{name: "single bytes", sizes: repeat(20, 1)},
		{name: "around one uint64", sizes: []int{7, 8, 9, 1, 0, 15, 16, 17, 7, 9}},
		{name: "whole uint64s", sizes: repeat(40, 8)},
		{name: "crossing the uint64 buffer", sizes: []int{250, 10, 3, 256, 1, 255, 2}},
		{name: "exact buffers", sizes: []int{256, 256, 256, 224, 256, 0, 1}},
		{name: "crossing the reseed boundary", sizes: []int{990, 1, 1, 1, 5, 987, 9, 3000}},
		{name: "single bytes over two reseeds", sizes: repeat(2100, 1)},
		{name: "odd sizes over reseeds", sizes: repeat(300, 7)},
		{name: "large reads", sizes: []int{4096, 8192, 1, 65536 + 3, 5000}},
		{name: "random sizes", sizes: randomSizes(400, 600)},
		{name: "one MiB", sizes: []int{1 << 20}, digest: true},
		{name: "one MiB in random pieces", sizes: append(randomSizes(2000, 1000), 1<<20), digest: true},
	}
	seeds := []uint64{0, 1, 42, math.MaxUint64}

	type specCase struct {
		Name   string `json:"name"`
		Sizes  []int  `json:"sizes"`
		Digest bool   `json:"digest"`
	}
	spec := struct {
		Seeds []string   `json:"seeds"`
		Cases []specCase `json:"cases"`
	}{}
	for _, s := range seeds {
		spec.Seeds = append(spec.Seeds, strconv.FormatUint(s, 10))
	}
	for _, c := range cases {
		spec.Cases = append(spec.Cases, specCase{Name: c.name, Sizes: c.sizes, Digest: c.digest})
	}
	dir := t.TempDir()
	specPath := filepath.Join(dir, "spec.json")
	driverPath := filepath.Join(dir, "driver.mjs")
	specJSON, err := json.Marshal(spec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(specPath, specJSON, 0o600))
	require.NoError(t, os.WriteFile(driverPath, []byte(driverJS), 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, driverPath, specPath, (&url.URL{Scheme: "file", Path: filepath.ToSlash(shim)}).String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())
	var got map[string]map[string]jsResult
	require.NoError(t, json.Unmarshal(stdout, &got))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, seed := range seeds {
				key := strconv.FormatUint(seed, 10)
				js, ok := got[c.name][key]
				require.True(t, ok, "no JavaScript result for seed %d", seed)

				s := goSeed(seed)
				require.Equal(t, hex.EncodeToString(s[:]), js.Seed, "seedBytes(%d)", seed)

				r := rand.NewChaCha8(s)
				h := sha256.New()
				var want []string
				for _, n := range c.sizes {
					buf := make([]byte, n)
					_, _ = r.Read(buf)
					if c.digest {
						h.Write(buf)
					} else {
						want = append(want, hex.EncodeToString(buf))
					}
				}
				if c.digest {
					require.Equal(t, hex.EncodeToString(h.Sum(nil)), js.Digest, "seed %d", seed)
					t.Logf("seed %d: JavaScript took %.1f ms", seed, js.MS)
					continue
				}
				if want == nil {
					want = []string{}
				}
				require.Equal(t, want, js.Reads, "seed %d", seed)
			}
		})
	}
}
