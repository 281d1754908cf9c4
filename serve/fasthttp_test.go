package serve_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deepgo/deepgo/serve"
)

// rtRaw sends raw request bytes on a new connection and reads n responses.
func rtRaw(t *testing.T, base string, raw []byte, n int) []rtRawResp {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []rtRawResp
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %q: %v", i, rtShort(raw), err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		out = append(out, rtRawResp{resp.StatusCode, resp.Header.Get("Content-Type"),
			resp.Header.Get(serve.HeaderContentLength), resp.Close, string(body)})
	}
	return out
}

type rtRawResp struct {
	status int
	ctype  string
	ihcl   string
	close  bool
	body   string
}

func rtShort(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

// rtHTTPReq forms a raw request: method, target, extra header lines, body
// (Content-Length added unless hdrs names it or Transfer-Encoding).
func rtHTTPReq(method, target string, hdrs []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	hasHost, hasLen := false, false
	for _, h := range hdrs {
		l := strings.ToLower(h)
		hasHost = hasHost || strings.HasPrefix(l, "host:")
		hasLen = hasLen || strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "transfer-encoding:")
		b.WriteString(h + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: localhost\r\n")
	}
	if !hasLen && body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// TestFastPathMatchesNetHTTP sends the same raw requests — plain infer
// requests the fast path takes and every kind it hands to net/http — to
// Serve with the fast path and with net/http only: statuses, bodies and
// the content headers are the same.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	fast := rtStartOn(t, serve.Options{MaxBodyBytes: 1 << 20}, "serve")
	plain := rtStartOn(t, serve.Options{MaxBodyBytes: 1 << 20, NetHTTPOnly: true}, "serve")
	js := rtInferBody([]float32{1, 2, 3, 4})
	bin, hl := tritonBinaryRequest([]float32{1, -2, 3, 0.5}, 1, "")
	rows := make([]float32, 4*2000) // a body larger than the fast buffer
	for i := range rows {
		rows[i] = float32(i%7) - 3
	}
	big := rtInferBody(rows) // one row of 8000: a wrong shape, but a body of 30 kB
	ihcl := serve.HeaderContentLength + ": " + hl
	chunked := func(b []byte) []byte {
		return []byte(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b))
	}
	const p = "/v2/models/lin/infer"
	cases := []struct {
		name string
		raw  []byte
		n    int // responses
	}{
		{"json", rtHTTPReq("POST", p, nil, js), 1},
		{"binary", rtHTTPReq("POST", p, []string{ihcl}, bin), 1},
		{"binary lower-case header", rtHTTPReq("POST", p, []string{strings.ToLower(ihcl)}, bin), 1},
		{"version", rtHTTPReq("POST", "/v2/models/lin/versions/1/infer", nil, js), 1},
		{"unknown version", rtHTTPReq("POST", "/v2/models/lin/versions/9/infer", nil, js), 1},
		{"unknown model", rtHTTPReq("POST", "/v2/models/nope/infer", nil, js), 1},
		{"bad json", rtHTTPReq("POST", p, nil, []byte(`{"inputs":[`)), 1},
		{"bad binary header", rtHTTPReq("POST", p, []string{serve.HeaderContentLength + ": x"}, bin), 1},
		{"empty binary header", rtHTTPReq("POST", p, []string{serve.HeaderContentLength + ":"}, js), 1},
		{"two binary headers, the first empty", rtHTTPReq("POST", p, []string{serve.HeaderContentLength + ": ", ihcl}, bin), 1},
		{"binary header too large", rtHTTPReq("POST", p, []string{serve.HeaderContentLength + ": 99999"}, bin), 1},
		{"wrong shape", rtHTTPReq("POST", p, nil, []byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`)), 1},
		{"NaN", rtHTTPReq("POST", p, nil, []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[NaN,1,2,3]}]}`)), 1},
		{"big body", rtHTTPReq("POST", p, nil, big), 1},
		{"pipelined", append(append(rtHTTPReq("POST", p, nil, js), rtHTTPReq("POST", p, []string{ihcl}, bin)...), rtHTTPReq("GET", "/v2/health/ready", nil, nil)...), 3},
		{"connection close", rtHTTPReq("POST", p, []string{"Connection: close"}, js), 1},
		{"keep-alive", rtHTTPReq("POST", p, []string{"Connection: keep-alive"}, js), 1},
		{"chunked", rtHTTPReq("POST", p, []string{"Transfer-Encoding: chunked"}, chunked(js)), 1},
		{"expect", rtHTTPReq("POST", p, []string{"Expect: 100-continue"}, js), 2},
		{"query", rtHTTPReq("POST", p+"?x=1", nil, js), 1},
		{"percent-encoded", rtHTTPReq("POST", "/v2/models/%6cin/infer", nil, js), 1},
		{"dot segments", rtHTTPReq("POST", "/v2/models/x/../lin/infer", nil, js), 1},
		{"double slash", rtHTTPReq("POST", "/v2/models//lin/infer", nil, js), 1},
		{"GET infer", rtHTTPReq("GET", p, nil, nil), 1},
		{"no Host", []byte("POST " + p + " HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"), 1},
		{"malformed Host", rtHTTPReq("POST", p, []string{"Host: a b"}, js), 1},
		{"Host with a slash", rtHTTPReq("POST", p, []string{"Host: a/b"}, js), 1},
		{"two Hosts", rtHTTPReq("POST", p, []string{"Host: a", "Host: b"}, js), 1},
		{"HTTP/1.0", []byte(fmt.Sprintf("POST %s HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s", p, len(js), js)), 1},
		{"two Content-Lengths", rtHTTPReq("POST", p, []string{fmt.Sprintf("Content-Length: %d", len(js)), fmt.Sprintf("Content-Length: %d", len(js))}, js), 1},
		{"signed Content-Length", rtHTTPReq("POST", p, []string{fmt.Sprintf("Content-Length: +%d", len(js))}, js), 1},
		{"no body", rtHTTPReq("POST", p, []string{"Content-Length: 0"}, nil), 1},
		{"body over the limit", rtHTTPReq("POST", p, []string{"Content-Length: 2000000"}, nil), 1},
		{"huge head", rtHTTPReq("POST", p, []string{"X-Pad: " + strings.Repeat("a", 40000)}, js), 1},
		{"obs-fold", rtHTTPReq("POST", p, []string{"X-A: 1", " folded"}, js), 1},
		{"control in value", rtHTTPReq("POST", p, []string{"X-A: \x01"}, js), 1},
		{"leading CRLF", append([]byte("\r\n"), rtHTTPReq("POST", p, nil, js)...), 1},
	}
	for _, c := range cases {
		got := rtRaw(t, fast.url, c.raw, c.n)
		want := rtRaw(t, plain.url, c.raw, c.n)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s, response %d:\nfast path %+v\nnet/http  %+v", c.name, i, got[i], want[i])
			}
		}
		if t.Failed() {
			continue
		}
		if c.name == "json" && (got[0].status != 200 || !strings.Contains(got[0].body, `"outputs"`)) {
			t.Errorf("json: %+v", got[0])
		}
		if c.name == "big body" && (got[0].status != 400 || !strings.Contains(got[0].body, "8000")) {
			t.Errorf("big body: %+v", got[0])
		}
	}
}

// TestFastPathHandsOffMidConnection serves fast infer requests, then a
// request for net/http, then infer requests again, all on one connection.
func TestFastPathHandsOffMidConnection(t *testing.T) {
	e := rtStartOn(t, serve.Options{}, "serve")
	js := rtInferBody([]float32{1, 2, 3, 4})
	want := rtWant(e.pkg, []float32{1, 2, 3, 4})
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, raw := range [][]byte{
		rtHTTPReq("POST", "/v2/models/lin/infer", nil, js),
		rtHTTPReq("POST", "/v2/models/lin/infer", nil, js),
		rtHTTPReq("GET", "/v2/models/lin", nil, nil),
		rtHTTPReq("POST", "/v2/models/lin/infer", nil, js),
		rtHTTPReq("GET", "/v2/health/live", nil, nil),
	} {
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %d close=%v %s", i, resp.StatusCode, resp.Close, body)
		}
		if bytes.HasPrefix(raw, []byte("POST")) {
			rtClose(t, fmt.Sprintf("request %d", i), rtOutputData(t, rtJSON(t, body)["outputs"].([]any)[0].(map[string]any)), want)
		}
	}
}

// FuzzFastConn writes arbitrary bytes on a connection to Serve: the server
// never answers 500 (net/http's 505 for a bad HTTP version is fine), never
// panics, and answers the next good request.
func FuzzFastConn(f *testing.F) {
	js := rtInferBody([]float32{1, 2, 3, 4})
	bin, hl := tritonBinaryRequest([]float32{1, -2, 3, 0.5}, 1, "")
	for _, raw := range [][]byte{
		rtHTTPReq("POST", "/v2/models/lin/infer", nil, js),
		rtHTTPReq("POST", "/v2/models/lin/infer", []string{serve.HeaderContentLength + ": " + hl}, bin),
		append(rtHTTPReq("POST", "/v2/models/lin/infer", nil, js), rtHTTPReq("GET", "/v2/health/ready", nil, nil)...),
		rtHTTPReq("POST", "/v2/models/lin/infer", []string{"Content-Length: 5"}, nil),
		[]byte("POST /v2/models/lin/infer HTTP/1.1\r\nHost: x\r\n"),
	} {
		f.Add(raw)
	}
	e := rtStart(f, serve.Options{MaxBodyBytes: 1 << 16})
	addr := strings.TrimPrefix(e.url, "http://")
	good := rtHTTPReq("POST", "/v2/models/lin/infer", nil, js)
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(raw)
		_ = c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusInternalServerError {
				t.Fatalf("%q: status %d", raw, resp.StatusCode)
			}
		}
		got := rtRaw(t, e.url, good, 1)
		if got[0].status != 200 {
			t.Fatalf("good request after %q: %+v", raw, got[0])
		}
	})
}
