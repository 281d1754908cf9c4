//go:build race

package kernels

// sgRace reports whether the race detector is on; it makes sync.Pool drop
// items at random, so allocation counts are meaningless then.
const sgRace = true
