//go:build !unix

package track

// processAlive cannot tell on this platform: runs are judged by their
// heartbeat alone.
func processAlive(int) bool { return true }
