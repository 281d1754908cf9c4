package track

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

var (
	sysOnce sync.Once
	sysInfo map[string]string
)

// SystemInfo returns the tags that describe this process's machine and
// build, as recorded on every run the Logger creates:
//
//	sys.go_version, sys.os, sys.arch, sys.cpu (model name), sys.num_cpu,
//	sys.gomaxprocs, sys.hostname, sys.user, sys.pid, sys.command,
//	sys.git_commit and sys.git_dirty (from the binary's VCS stamp or, when
//	absent, `git rev-parse HEAD` in the working directory; omitted if
//	neither is available).
//
// The result is a fresh map each call.
func SystemInfo() map[string]string {
	sysOnce.Do(func() {
		m := map[string]string{
			"sys.go_version": runtime.Version(),
			"sys.os":         runtime.GOOS,
			"sys.arch":       runtime.GOARCH,
			"sys.cpu":        cpuModel(),
			"sys.num_cpu":    strconv.Itoa(runtime.NumCPU()),
		}
		if h, err := os.Hostname(); err == nil && h != "" {
			m["sys.hostname"] = h
		}
		if u, err := user.Current(); err == nil && u.Username != "" {
			m["sys.user"] = u.Username
		}
		if c, d := gitCommit(); c != "" {
			m["sys.git_commit"] = c
			m["sys.git_dirty"] = strconv.FormatBool(d)
		}
		sysInfo = m
	})
	out := make(map[string]string, len(sysInfo)+3)
	for k, v := range sysInfo {
		out[k] = v
	}
	// These can change during the process's life.
	out["sys.gomaxprocs"] = strconv.Itoa(runtime.GOMAXPROCS(0))
	out["sys.pid"] = strconv.Itoa(os.Getpid())
	cmd := strings.ToValidUTF8(strings.Join(os.Args, " "), "?")
	if len(cmd) > 1000 {
		cmd = strings.ToValidUTF8(cmd[:1000], "")
	}
	out["sys.command"] = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, cmd)
	return out
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
			}
		}
	}
	return runtime.GOARCH
}

// gitCommit returns the commit the binary was built from (or, failing
// that, of the working directory's repository) and whether the tree had
// local changes.
func gitCommit() (string, bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, dirty
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	rev := strings.TrimSpace(string(out))
	if len(rev) < 40 || strings.Trim(rev, "0123456789abcdef") != "" {
		return "", false
	}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return rev, err == nil && len(strings.TrimSpace(string(st))) > 0
}
