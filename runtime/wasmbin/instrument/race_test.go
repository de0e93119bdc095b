//go:build race

package instrument

// raceEnabled reports whether the race detector is on. wazero's interpreter
// reads globals from Go code, so a host goroutine setting the stop global
// while the guest runs is, formally, a data race the detector reports.
const raceEnabled = true
