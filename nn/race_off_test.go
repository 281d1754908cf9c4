//go:build !race

package nn_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
