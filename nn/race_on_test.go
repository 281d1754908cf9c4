//go:build race

package nn_test

// raceEnabled reports whether the race detector is on; it makes sync.Pool
// drop items at random, so allocation counts mean little.
const raceEnabled = true
