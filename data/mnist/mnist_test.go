package mnist_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/deepgo/deepgo/data"
	"github.com/deepgo/deepgo/data/mnist"
	"golang.org/x/mod/sumdb/dirhash"
)

// escaped module path and zip URL path used by the proxy protocol.
const zipURLPath = "/github.com/petar/!go!m!n!i!s!t/@v/" + mnist.ModuleVersion + ".zip"

func TestLoadRealMNIST(t *testing.T) {
	train, test, err := mnist.Load("")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if train.Len() != 60000 || test.Len() != 10000 {
		t.Fatalf("sizes %d/%d, want 60000/10000", train.Len(), test.Len())
	}
	// The well-known class counts of MNIST.
	wantTrain := []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	wantTest := []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
	for _, c := range []struct {
		name string
		ds   *mnist.Dataset
		want []int
	}{{"train", train, wantTrain}, {"test", test, wantTest}} {
		hist := make([]int, 10)
		for _, l := range c.ds.Labels() {
			hist[l]++
		}
		if !slices.Equal(hist, c.want) {
			t.Errorf("%s label histogram %v, want %v", c.name, hist, c.want)
		}
	}
	if train.Labels()[0] != 5 || test.Labels()[0] != 7 {
		t.Errorf("first labels %d, %d; want 5, 7", train.Labels()[0], test.Labels()[0])
	}
	ex, err := train.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	if s := ex.Input.Shape(); !slices.Equal(s, []int{1, 28, 28}) || ex.Target.Int64s()[0] != 5 || ex.Target.Dim() != 0 {
		t.Fatalf("example shape %v target %v", s, ex.Target)
	}
	lo, hi := float32(1), float32(0)
	for _, v := range ex.Input.Data() {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Errorf("pixel range of image 0 [%v, %v], want [0, 1]", lo, hi)
	}
	// The mean pixel of the training set is about 0.1307 (the usual
	// normalisation constant).
	var sum int64
	for _, b := range train.Pixels() {
		sum += int64(b)
	}
	if mean := float64(sum) / float64(len(train.Pixels())) / 255; mean < 0.1306 || mean > 0.1308 {
		t.Errorf("mean pixel %v, want 0.1307", mean)
	}
	if _, err := test.Get(10000); err == nil {
		t.Errorf("Get(10000): no error")
	}
}

// idxGz encodes an IDX ubyte file, gzip-compressed.
func idxGz(dims []uint32, payload []byte) []byte {
	var raw bytes.Buffer
	raw.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&raw, binary.BigEndian, d)
	}
	raw.Write(payload)
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(raw.Bytes())
	w.Close()
	return out.Bytes()
}

// fakeFiles returns small MNIST-format files: nTrain and nTest images
// whose pixels are all equal to the image index, labels index % 10.
func fakeFiles(nTrain, nTest int) map[string][]byte {
	split := func(n int) ([]byte, []byte) {
		px := make([]byte, n*28*28)
		lb := make([]byte, n)
		for i := 0; i < n; i++ {
			for k := 0; k < 28*28; k++ {
				px[i*28*28+k] = byte(i * 51)
			}
			lb[i] = byte(i % 10)
		}
		return idxGz([]uint32{uint32(n), 28, 28}, px), idxGz([]uint32{uint32(n)}, lb)
	}
	ti, tl := split(nTrain)
	vi, vl := split(nTest)
	return map[string][]byte{
		mnist.TrainImagesFile: ti, mnist.TrainLabelsFile: tl,
		mnist.TestImagesFile: vi, mnist.TestLabelsFile: vl,
	}
}

// moduleZip builds a module zip with the files under data/ and returns it
// with its h1: hash.
func moduleZip(t *testing.T, files map[string][]byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	prefix := mnist.ModulePath + "@" + mnist.ModuleVersion + "/"
	add := func(name string, content []byte) {
		w, err := zw.Create(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(content)
	}
	add("go.mod", []byte("module "+mnist.ModulePath+"\n"))
	for name, c := range files {
		add("data/"+name, c)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.zip")
	os.WriteFile(path, b.Bytes(), 0o644)
	h, err := dirhash.HashZip(path, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), h
}

// proxyServer serves zip at the module's proxy URL and counts requests.
func proxyServer(t *testing.T, zipBytes []byte, status int) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != zipURLPath {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "nope", status)
			return
		}
		w.Write(zipBytes)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestDownload(t *testing.T) {
	zb, sum := moduleZip(t, fakeFiles(3, 2))
	srv, hits := proxyServer(t, zb, http.StatusOK)
	cache := t.TempDir()
	loc := &mnist.Locator{ModCache: t.TempDir(), Proxy: srv.URL, CacheDir: cache, Sum: sum}
	train, test, err := loc.Load()
	if err != nil {
		t.Fatalf("download with the right hash: %v", err)
	}
	if train.Len() != 3 || test.Len() != 2 || hits.Load() != 1 {
		t.Fatalf("sizes %d/%d after %d requests", train.Len(), test.Len(), hits.Load())
	}
	ex, _ := train.Get(1)
	if ex.Input.At(0, 5, 5) != 51.0/255 || ex.Target.Int64s()[0] != 1 {
		t.Errorf("example 1: pixel %v label %v", ex.Input.At(0, 5, 5), ex.Target)
	}
	// The second load comes from the cache without a request.
	if _, _, err := loc.Load(); err != nil || hits.Load() != 1 {
		t.Errorf("cached load: %v after %d requests", err, hits.Load())
	}

	// Wrong hash: error, nothing left in the cache.
	cache2 := t.TempDir()
	bad := &mnist.Locator{ModCache: t.TempDir(), Proxy: srv.URL, CacheDir: cache2}
	_, _, err = bad.Load()
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), mnist.ModuleSum) {
		t.Errorf("wrong hash: %v", err)
	}
	if left, _ := os.ReadDir(cache2); len(left) != 0 {
		t.Errorf("cache holds %v after a failed download", left)
	}
	// A corrupted cached zip is rejected, with advice.
	cached := filepath.Join(cache, "GoMNIST@"+mnist.ModuleVersion+".zip")
	os.WriteFile(cached, zb[:len(zb)/2], 0o644)
	if _, _, err := loc.Load(); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("corrupt cached zip: %v", err)
	}
}

func TestDownloadRealHash(t *testing.T) {
	// Serve the genuine module zip (from the module cache) to check that the
	// embedded ModuleSum is right.
	mc := (&mnist.Locator{}).ModCacheDir()
	real := filepath.Join(mc, "cache", "download", "github.com", "petar", "!go!m!n!i!s!t", "@v", mnist.ModuleVersion+".zip")
	zb, err := os.ReadFile(real)
	if err != nil {
		t.Skipf("module zip not in the module cache: %v", err)
	}
	srv, _ := proxyServer(t, zb, http.StatusOK)
	loc := &mnist.Locator{ModCache: t.TempDir(), Proxy: srv.URL, CacheDir: t.TempDir()}
	train, _, err := loc.Load()
	if err != nil || train.Len() != 60000 {
		t.Fatalf("genuine zip with the embedded hash: %v", err)
	}
}

func TestProxyList(t *testing.T) {
	zb, sum := moduleZip(t, fakeFiles(1, 1))
	good, _ := proxyServer(t, zb, http.StatusOK)
	missing, _ := proxyServer(t, nil, http.StatusNotFound)
	broken, _ := proxyServer(t, nil, http.StatusInternalServerError)
	fileProxy := t.TempDir()
	p := filepath.Join(fileProxy, filepath.FromSlash(zipURLPath))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, zb, 0o644)
	cases := []struct {
		proxy string
		ok    bool
		want  string
	}{
		{missing.URL + "," + good.URL, true, ""},
		{broken.URL + "|" + good.URL, true, ""},
		{broken.URL + "," + good.URL, false, "500"},
		{"off", false, "GOPROXY=off"},
		{missing.URL + ",direct", false, "not supported"},
		{missing.URL + ",off," + good.URL, false, "GOPROXY=off"},
		{"file://" + filepath.ToSlash(fileProxy), true, ""},
		{"ftp://example.invalid", false, "not an http"},
	}
	for _, c := range cases {
		loc := &mnist.Locator{ModCache: t.TempDir(), Proxy: c.proxy, CacheDir: t.TempDir(), Sum: sum}
		_, _, err := loc.Load()
		if c.ok && err != nil {
			t.Errorf("GOPROXY=%s: %v", c.proxy, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("GOPROXY=%s: error %v, want one mentioning %q", c.proxy, err, c.want)
		}
		if !c.ok && err != nil && !strings.Contains(err.Error(), "go mod download") {
			t.Errorf("GOPROXY=%s: error %v does not say what to do", c.proxy, err)
		}
	}
}

func TestModuleCacheLayout(t *testing.T) {
	// Files extracted in a module cache folder are found without any proxy.
	mc := t.TempDir()
	dir := filepath.Join(mc, "github.com", "petar", "!go!m!n!i!s!t@"+mnist.ModuleVersion, "data")
	os.MkdirAll(dir, 0o755)
	for name, c := range fakeFiles(2, 1) {
		os.WriteFile(filepath.Join(dir, name), c, 0o644)
	}
	loc := &mnist.Locator{ModCache: mc, Proxy: "off", CacheDir: t.TempDir()}
	train, _, err := loc.Load()
	if err != nil || train.Len() != 2 {
		t.Fatalf("module cache folder: %v", err)
	}
	// Only the downloaded zip present: verified and read.
	mc2 := t.TempDir()
	zb, sum := moduleZip(t, fakeFiles(4, 1))
	zp := filepath.Join(mc2, "cache", "download", "github.com", "petar", "!go!m!n!i!s!t", "@v", mnist.ModuleVersion+".zip")
	os.MkdirAll(filepath.Dir(zp), 0o755)
	os.WriteFile(zp, zb, 0o644)
	loc = &mnist.Locator{ModCache: mc2, Proxy: "off", CacheDir: t.TempDir(), Sum: sum}
	if train, _, err := loc.Load(); err != nil || train.Len() != 4 {
		t.Fatalf("module cache zip: %v", err)
	}
	loc.Sum = mnist.ModuleSum
	if _, _, err := loc.Load(); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("module cache zip with the wrong hash: %v", err)
	}
}

func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	_, _, err := mnist.Load(dir)
	if err == nil || !strings.Contains(err.Error(), mnist.TrainImagesFile) || !strings.Contains(err.Error(), "go mod download") {
		t.Errorf("empty dir: %v", err)
	}
	files := fakeFiles(3, 2)
	write := func(f map[string][]byte) {
		for name, c := range f {
			os.WriteFile(filepath.Join(dir, name), c, 0o644)
		}
	}
	write(files)
	if train, test, err := mnist.Load(dir); err != nil || train.Len() != 3 || test.Len() != 2 {
		t.Fatalf("good dir: %v", err)
	}
	cases := []struct {
		name    string
		file    string
		content []byte
		want    string
	}{
		{"truncated gzip", mnist.TrainImagesFile, files[mnist.TrainImagesFile][:len(files[mnist.TrainImagesFile])/2], "truncated"},
		{"corrupt gzip", mnist.TestLabelsFile, append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{7}, 40)...), "gzip"},
		{"not idx", mnist.TrainLabelsFile, []byte("hello world"), "bad magic"},
		{"wrong image size", mnist.TrainImagesFile, idxGz([]uint32{1, 2, 2}, []byte{1, 2, 3, 4}), "[N 28 28]"},
		{"count mismatch", mnist.TrainLabelsFile, idxGz([]uint32{2}, []byte{1, 2}), "2 labels"},
		{"bad label", mnist.TestLabelsFile, idxGz([]uint32{2}, []byte{1, 12}), "label 12"},
	}
	for _, c := range cases {
		write(files)
		os.WriteFile(filepath.Join(dir, c.file), c.content, 0o644)
		_, _, err := mnist.Load(dir)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range []string{c.want, c.file, "delete it"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestLoaderOverMNIST(t *testing.T) {
	dir := t.TempDir()
	for name, c := range fakeFiles(5, 1) {
		os.WriteFile(filepath.Join(dir, name), c, 0o644)
	}
	train, _, err := mnist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := data.NewLoader(train, data.LoaderConfig{BatchSize: 2, Transform: data.Normalize([]float32{0.1307}, []float32{0.3081})})
	n := 0
	for b, err := range l.Batches(0) {
		if err != nil {
			t.Fatal(err)
		}
		if s := b.Input.Shape(); s[1] != 1 || s[2] != 28 || s[3] != 28 {
			t.Errorf("batch shape %v", s)
		}
		n += b.Size()
	}
	if n != 5 {
		t.Errorf("loader gave %d examples", n)
	}
	x, y := train.Tensors()
	if !slices.Equal(x.Shape(), []int{5, 1, 28, 28}) || !slices.Equal(y.Int64s(), []int64{0, 1, 2, 3, 4}) || x.At(4, 0, 0, 0) != 204.0/255 {
		t.Errorf("Tensors: %v %v", x.Shape(), y)
	}
}
