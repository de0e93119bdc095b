// nbody is the numeric kernel among the examples: the n-body simulation of
// the Computer Language Benchmarks Game (the Sun and the four gas giants,
// float64, a symplectic integrator with dt = 0.01). It does no I/O and
// allocates nothing per step, so a call measures how well an engine runs
// floating-point code: a job for comparing wasm with native Go.
//
// The input is the number of steps as decimal text (empty: 1000); the output
// is the system's energy before and after, "%.9f\n%.9f\n" as the Benchmarks
// Game prints it. 1000 steps give -0.169075164 and -0.169087605.
//
// benchmarks/native holds a copy of this kernel as the native reference;
// its test checks that both print the same energies.
package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryrun/ferry/guest"
)

const (
	defaultSteps = 1000
	// maxSteps bounds one call to about a second natively.
	maxSteps = 10_000_000
)

func main() { guest.Handle(run) }

func run(in []byte) ([]byte, error) {
	steps := defaultSteps
	if s := strings.TrimSpace(string(in)); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("steps %q is not a non-negative integer", s)
		}
		if n > maxSteps {
			return nil, fmt.Errorf("steps %d is over the limit of %d", n, maxSteps)
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
