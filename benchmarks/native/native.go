// Package native holds the example jobs as plain Go functions: the physical
// reference that wasm/native ratios are measured against. Each job is an
// honest port of the same algorithm as its wasm counterpart (the Go examples
// in wasm-examples/go, the blueprint jobs in wasm-examples/blueprint/jobs),
// and returns byte for byte the same output and, for bad input, an error
// with the same text as the guest's. The package test checks that against
// the built modules.
//
// It holds no engine, host or I/O code, and nothing outside benchmarks and
// their tests should import it.
package native

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Job is one example job as a Go function.
type Job struct {
	// Name is the job's name in the benchmark harness: a Go or WAT example's
	// name, or a blueprint job's key in blueprint.toml.
	Name string
	// Run computes the job's output. It does not modify input, but its
	// output may alias it (echo returns it as is). It is safe for
	// concurrent use: no job keeps state between calls.
	Run func(input []byte) ([]byte, error)
	// Input is the benchmark's default input, sized so that one call does
	// meaningful work. Each All or Lookup call returns a fresh copy.
	Input []byte
	// Note says what makes the native number not like-for-like, if
	// anything: assembly the wasm build cannot use, for instance.
	Note string
}

// Lookup returns the job called name.
func Lookup(name string) (Job, bool) {
	for _, j := range All() {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

// All returns every job: the Go and WAT examples first, then the blueprint
// jobs.
func All() []Job {
	return []Job{
		{
			Name: "echo", Run: echo, Input: []byte("ferry loopback!!"),
			Note: "no work at all: the wasm number is pure call overhead",
		},
		{Name: "incredible-squaring", Run: incredibleSquaring, Input: []byte("12345")},
		{
			Name: "sha256", Run: sha256Hex, Input: pseudoRandomBytes(64 << 10),
			Note: "crypto/sha256 uses assembly natively (SHA-NI or AVX2 on amd64, the SHA-2 instructions on arm64); the wasm build runs its generic Go code",
		},
		{Name: "jsontransform", Run: jsonTransform, Input: sampleOrder(64)},
		{
			Name: "nbody", Run: nbody, Input: []byte("100000"),
			Note: "on arm64 the Go compiler fuses the kernel's multiply-adds into FMA instructions, which wasm lacks; the printed energies still agree",
		},
		{Name: "square", Run: square, Input: []byte("12345")},
		{
			Name: "checksum", Run: checksum, Input: sampleText(100),
			Note: "the wasm job is C (clang -O2); the native port is Go",
		},
		{
			Name: "wordcount", Run: wordcount, Input: sampleText(100),
			Note: "the wasm job is a C WASI command, so each call also starts a process-like instance and goes through stdin and stdout",
		},
		{
			Name: "reverse", Run: reverse, Input: sampleText(100),
			Note: "the wasm job is Rust; the native port is Go",
		},
	}
}

// echo is wasm-examples/wat/echo.wat: the output is the input.
func echo(in []byte) ([]byte, error) { return in, nil }

// sha256Hex is wasm-examples/go/sha256: the digest as lowercase hex, no
// newline.
func sha256Hex(in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return []byte(hex.EncodeToString(sum[:])), nil
}

// incredibleSquaring is wasm-examples/go/incredible-squaring: a u64 as
// decimal text, 8 big-endian bytes or a 32-byte ABI word in; its square out
// in the same form.
func incredibleSquaring(in []byte) ([]byte, error) {
	if s := strings.TrimSpace(string(in)); s != "" && isDigits(s) {
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("input %q is not a u64: %w", s, err)
		}
		hi, lo := bits.Mul64(x, x)
		n := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
		n.Or(n, new(big.Int).SetUint64(lo))
		return []byte(n.String()), nil
	}
	switch len(in) {
	case 8:
		hi, lo := bits.Mul64(binary.BigEndian.Uint64(in), binary.BigEndian.Uint64(in))
		out := binary.BigEndian.AppendUint64(nil, hi)
		return binary.BigEndian.AppendUint64(out, lo), nil
	case 32:
		for _, b := range in[:24] {
			if b != 0 {
				return nil, errors.New("ABI-encoded input does not fit in a u64")
			}
		}
		x := binary.BigEndian.Uint64(in[24:])
		hi, lo := bits.Mul64(x, x)
		out := make([]byte, 16, 32)
		out = binary.BigEndian.AppendUint64(out, hi)
		return binary.BigEndian.AppendUint64(out, lo), nil
	}
	return nil, fmt.Errorf("want a u64 as decimal text, 8 big-endian bytes or a 32-byte ABI word; got %d bytes", len(in))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// square is the blueprint's square-go job: decimal text only, unlike
// incredible-squaring, and with its own error text.
func square(in []byte) ([]byte, error) {
	x, err := strconv.ParseUint(strings.TrimSpace(string(in)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("want a u64: %w", err)
	}
	sq := new(big.Int).Mul(new(big.Int).SetUint64(x), new(big.Int).SetUint64(x))
	return []byte(sq.String()), nil
}

type order struct {
	Items []struct {
		Name  string  `json:"name"`
		Price float64 `json:"price"`
		Qty   int     `json:"qty"`
	} `json:"items"`
}

type summary struct {
	Count int      `json:"count"`
	Total float64  `json:"total"`
	Names []string `json:"names"`
}

// jsonTransform is wasm-examples/go/jsontransform: an order in, its item
// count, total and sorted item names out.
func jsonTransform(in []byte) ([]byte, error) {
	var o order
	if err := json.Unmarshal(in, &o); err != nil {
		return nil, fmt.Errorf("decode order: %w", err)
	}
	if len(o.Items) == 0 {
		return nil, errors.New("order has no items")
	}
	s := summary{Count: len(o.Items), Names: make([]string, 0, len(o.Items))}
	for _, it := range o.Items {
		if it.Qty < 0 || it.Price < 0 {
			return nil, fmt.Errorf("item %q: negative price or quantity", it.Name)
		}
		// The conversion rounds the product before the sum, as wasm (which
		// has no fused multiply-add) does; without it the compiler fuses
		// the two on arm64, and the total's last digits differ.
		s.Total += float64(it.Price * float64(it.Qty))
		s.Names = append(s.Names, it.Name)
	}
	sort.Strings(s.Names)
	return json.Marshal(s)
}

// checksum is the blueprint's checksum-c job: the input's FNV-1a 64-bit
// hash as 16 lowercase hex digits. The loop is the C one, not hash/fnv, so
// that both sides run the same code shape.
func checksum(in []byte) ([]byte, error) {
	h := uint64(14695981039346656037) // FNV-1a 64 offset basis
	for _, c := range in {
		h ^= uint64(c)
		h *= 1099511628211 // FNV-1a 64 prime
	}
	const digits = "0123456789abcdef"
	out := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		out[i] = digits[h&0xf]
		h >>= 4
	}
	return out, nil
}

// wordcount is the blueprint's wordcount-c job: "lines words bytes\n" as wc
// counts them, with ASCII whitespace separating words.
func wordcount(in []byte) ([]byte, error) {
	var lines, words uint64
	inWord := false
	for _, c := range in {
		if c == '\n' {
			lines++
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' {
			inWord = false
		} else if !inWord {
			inWord = true
			words++
		}
	}
	return fmt.Appendf(nil, "%d %d %d\n", lines, words, len(in)), nil
}

// reverse is the blueprint's reverse-rust job: the input's bytes in
// reverse order.
func reverse(in []byte) ([]byte, error) {
	out := slices.Clone(in)
	slices.Reverse(out)
	return out, nil
}

// The n-body kernel below is a copy of wasm-examples/go/nbody (which, as a
// guest module, cannot share a package with the host module); keep the two
// identical, so that the ratio compares one program compiled two ways.

const (
	nbodyDefaultSteps = 1000
	nbodyMaxSteps     = 10_000_000
)

// nbody is wasm-examples/go/nbody: the Benchmarks Game n-body simulation for
// the given number of steps (empty: 1000), printing the energy before and
// after.
func nbody(in []byte) ([]byte, error) {
	steps := nbodyDefaultSteps
	if s := strings.TrimSpace(string(in)); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("steps %q is not a non-negative integer", s)
		}
		if n > nbodyMaxSteps {
			return nil, fmt.Errorf("steps %d is over the limit of %d", n, nbodyMaxSteps)
		}
		steps = n
	}
	before, after := simulate(steps)
	return fmt.Appendf(nil, "%.9f\n%.9f\n", before, after), nil
}

const (
	solarMass   = 4 * math.Pi * math.Pi
	daysPerYear = 365.24
	dt          = 0.01
)

type body struct{ x, y, z, vx, vy, vz, mass float64 }

// simulate runs steps steps from the Benchmarks Game's initial state and
// returns the energy before and after.
func simulate(steps int) (before, after float64) {
	bodies := [...]body{
		{mass: solarMass}, // the Sun
		{ // Jupiter
			x:    4.84143144246472090e+00,
			y:    -1.16032004402742839e+00,
			z:    -1.03622044471123109e-01,
			vx:   1.66007664274403694e-03 * daysPerYear,
			vy:   7.69901118419740425e-03 * daysPerYear,
			vz:   -6.90460016972063023e-05 * daysPerYear,
			mass: 9.54791938424326609e-04 * solarMass,
		},
		{ // Saturn
			x:    8.34336671824457987e+00,
			y:    4.12479856412430479e+00,
			z:    -4.03523417114321381e-01,
			vx:   -2.76742510726862411e-03 * daysPerYear,
			vy:   4.99852801234917238e-03 * daysPerYear,
			vz:   2.30417297573763929e-05 * daysPerYear,
			mass: 2.85885980666130812e-04 * solarMass,
		},
		{ // Uranus
			x:    1.28943695621391310e+01,
			y:    -1.51111514016986312e+01,
			z:    -2.23307578892655734e-01,
			vx:   2.96460137564761618e-03 * daysPerYear,
			vy:   2.37847173959480950e-03 * daysPerYear,
			vz:   -2.96589568540237556e-05 * daysPerYear,
			mass: 4.36624404335156298e-05 * solarMass,
		},
		{ // Neptune
			x:    1.53796971148509165e+01,
			y:    -2.59193146099879641e+01,
			z:    1.79258772950371181e-01,
			vx:   2.68067772490389322e-03 * daysPerYear,
			vy:   1.62824170038242295e-03 * daysPerYear,
			vz:   -9.51592254519715870e-05 * daysPerYear,
			mass: 5.15138902046611451e-05 * solarMass,
		},
	}
	bs := bodies[:]
	offsetMomentum(bs)
	before = energy(bs)
	for range steps {
		advance(bs)
	}
	return before, energy(bs)
}

// offsetMomentum gives the Sun the velocity that makes the system's total
// momentum zero.
func offsetMomentum(bs []body) {
	var px, py, pz float64
	for _, b := range bs {
		px += b.vx * b.mass
		py += b.vy * b.mass
		pz += b.vz * b.mass
	}
	bs[0].vx = -px / solarMass
	bs[0].vy = -py / solarMass
	bs[0].vz = -pz / solarMass
}

func energy(bs []body) float64 {
	var e float64
	for i, b := range bs {
		e += 0.5 * b.mass * (b.vx*b.vx + b.vy*b.vy + b.vz*b.vz)
		for _, b2 := range bs[i+1:] {
			dx, dy, dz := b.x-b2.x, b.y-b2.y, b.z-b2.z
			e -= b.mass * b2.mass / math.Sqrt(dx*dx+dy*dy+dz*dz)
		}
	}
	return e
}

// advance moves the system one step of dt: velocities from the pairwise
// forces, then positions from the velocities.
func advance(bs []body) {
	for i := range bs {
		bi := &bs[i]
		for j := i + 1; j < len(bs); j++ {
			bj := &bs[j]
			dx, dy, dz := bi.x-bj.x, bi.y-bj.y, bi.z-bj.z
			d2 := dx*dx + dy*dy + dz*dz
			mag := dt / (d2 * math.Sqrt(d2))
			mi, mj := bi.mass*mag, bj.mass*mag
			bi.vx -= dx * mj
			bi.vy -= dy * mj
			bi.vz -= dz * mj
			bj.vx += dx * mi
			bj.vy += dy * mi
			bj.vz += dz * mi
		}
	}
	for i := range bs {
		b := &bs[i]
		b.x += dt * b.vx
		b.y += dt * b.vy
		b.z += dt * b.vz
	}
}

// Default inputs.

// sampleText is wasm-examples/blueprint/samples/text.txt repeated n times
// (44 bytes each).
func sampleText(n int) []byte {
	return []byte(strings.Repeat("the quick brown fox\njumps over\nthe lazy dog\n", n))
}

// pseudoRandomBytes returns n bytes of a fixed xorshift64 stream: the same
// input on every run, and nothing a hash could shortcut.
func pseudoRandomBytes(n int) []byte {
	out := make([]byte, 0, n+8)
	x := uint64(0x9e3779b97f4a7c15)
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		out = binary.LittleEndian.AppendUint64(out, x)
	}
	return out[:n]
}

// sampleOrder is an order for jsontransform with n items, in the shape a
// shop would send: fields the job ignores (a customer, SKUs, tags) beside
// the ones it reads, and names out of order so that the sort works.
func sampleOrder(n int) []byte {
	fruits := []string{"walnut", "apricot", "quince", "fig", "medlar", "damson", "olive", "chestnut"}
	var b strings.Builder
	b.WriteString(`{"id":"ord-20261122-0042","customer":{"name":"Ada Lovelace","email":"ada@example.com","tier":"gold"},`)
	b.WriteString(`"currency":"EUR","items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		// 7919 is prime and does not divide n, so k visits 0..n-1 once
		// each, scrambled.
		k := i * 7919 % n
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","name":"%s %03d","price":%d.%02d,"qty":%d,"tags":["dried","organic"]}`,
			10000+k*37, fruits[k%len(fruits)], k, 1+k*13%97, k*29%100, 1+k%9)
	}
	b.WriteString(`],"shipping":{"method":"standard","address":"12 Analytical Row, London"}}`)
	return []byte(b.String())
}
