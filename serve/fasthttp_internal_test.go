package serve

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fastTestServer serves New(opts) with the fast path and the given
// timeouts; it returns the address.
func fastTestServer(t *testing.T, idle, head time.Duration) (*fastServer, string) {
	t.Helper()
	s := New(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := newFastServer(s, ln, idle, head)
	hs := &http.Server{Handler: s.Handler()}
	go func() { _ = hs.Serve(fs) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = fs.shutdown(ctx)
		_ = hs.Shutdown(ctx)
		s.Close()
	})
	return fs, ln.Addr().String()
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(c)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// TestFastPathTimeouts: an idle keep-alive connection is closed after the
// idle timeout, a connection that sends part of a head after the head
// timeout; a connection within both stays open.
func TestFastPathTimeouts(t *testing.T) {
	_, addr := fastTestServer(t, 300*time.Millisecond, 600*time.Millisecond)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !closedWithin(idle, 5*time.Second) {
		t.Error("idle connection still open 5 s after a 300 ms idle timeout")
	}
	if !closedWithin(slow, 5*time.Second) {
		t.Error("connection with half a head still open 5 s after a 600 ms head timeout")
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", el)
	}
	// A connection used within the timeout stays usable.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond)
		body := `{"inputs":[]}`
		if _, err := c.Write([]byte("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n\r\n" + body)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "no inputs") {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
}

// TestFastPathShutdownClosesIdle: shutdown closes idle fast connections at
// once and returns; new connections are refused.
func TestFastPathShutdownClosesIdle(t *testing.T) {
	fs, addr := fastTestServer(t, time.Minute, time.Minute)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Make sure the connection is registered and idle.
	if _, err := c.Write([]byte("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := fs.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("shutdown took %v with one idle connection", el)
	}
	if !closedWithin(c, 2*time.Second) {
		t.Error("idle connection open after shutdown")
	}
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Error("new connection accepted after shutdown")
	}
}

// FuzzFastHead: parseFastHead never panics, and a head it takes is one
// net/http reads the same way: POST, the same path and model, the same
// Content-Length, Inference-Header-Content-Length and Connection: close,
// no Transfer-Encoding.
func FuzzFastHead(f *testing.F) {
	for _, s := range []string{
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
		"POST /v2/models/m/versions/2/infer HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nInference-Header-Content-Length: 4\r\nConnection: close\r\n\r\n",
		"POST /v2/models/a@b/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX-A: \t1 \r\n\r\n",
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /v2/models/m/infer HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := bytes.Index(b, crlfcrlf)
		if end < 0 {
			return
		}
		head := b[:end+4]
		h := parseFastHead(head, 1<<20)
		if !h.fast {
			return
		}
		if h.size != len(head) || h.contentLength <= 0 || h.contentLength > 1<<20 {
			t.Fatalf("taken head %q: size %d, content length %d", head, h.size, h.contentLength)
		}
		body := strings.Repeat("x", int(h.contentLength))
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(head) + body)))
		if err != nil {
			t.Fatalf("fast path takes %q, net/http rejects it: %v", head, err)
		}
		path := "/v2/models/" + string(h.model) + "/infer"
		if h.version != nil {
			path = "/v2/models/" + string(h.model) + "/versions/" + string(h.version) + "/infer"
		}
		if r.Method != "POST" || r.URL.Path != path || r.URL.RawQuery != "" || string(h.path) != r.RequestURI ||
			r.ContentLength != h.contentLength || len(r.TransferEncoding) != 0 || r.Close != h.close {
			t.Fatalf("head %q: fast path %s %q len %d close %v; net/http %s %q (raw query %q) len %d close %v TE %v",
				head, "POST", path, h.contentLength, h.close, r.Method, r.URL.Path, r.URL.RawQuery, r.ContentLength, r.Close, r.TransferEncoding)
		}
		if got := r.Header.Get(HeaderContentLength); got != string(h.ihcl) || len(r.Header.Values(HeaderContentLength)) > 1 {
			t.Fatalf("head %q: %s %q, net/http %q", head, HeaderContentLength, h.ihcl, got)
		}
		// net/http's mux serves the unescaped, cleaned path: it must be
		// the same.
		if cleaned := r.URL.EscapedPath(); cleaned != string(h.path) {
			t.Fatalf("head %q: path %q escapes to %q", head, h.path, cleaned)
		}
	})
}
