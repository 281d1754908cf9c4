package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The infer fast path.
//
// Serve answers well-formed HTTP/1.1 infer requests itself, on the
// connection's goroutine, without net/http: on loopback net/http's
// per-request work (a request and header map per request, a background
// read goroutine with two read-deadline changes, response header
// formatting) cost about as much CPU as the system calls that carry the
// request. Every other request — any method or path but POST
// /v2/models/{m}[/versions/{v}]/infer, and any infer request whose framing
// is not plain (no Content-Length, Transfer-Encoding, Expect, Upgrade, an
// unusual Connection value, a header block over fastBufSize, characters
// outside the strict set below, a body over MaxBodyBytes) — hands the
// connection, with the bytes read so far, to net/http, which serves it from
// then on: errors, limits and behaviour there are net/http's and Handler's.
// The fast path decodes, infers, counts, logs and recovers exactly as
// Handler's infer route does and writes the same status and body.
//
// One difference from net/http: a request on the fast path is not
// cancelled when its client disconnects (net/http notices with a background
// read per request, which is the cost being avoided); Options.RequestTimeout
// still bounds it.

// fastBufSize is each fast connection's read buffer: a request head must
// fit in it (else the connection goes to net/http, whose limit is 1 MiB);
// a body that fits after its head is decoded in place.
const fastBufSize = 16 << 10

// Connection states for timeouts and shutdown.
const (
	fcIdle int32 = iota // waiting for the first byte of a request
	fcHead              // reading a request head
	fcBusy              // reading a body, inferring or writing
)

// fastServer accepts on the real listener, serves fast connections and is
// itself the net.Listener net/http serves handed-off connections from.
type fastServer struct {
	s           *Server
	ln          net.Listener
	idleTimeout time.Duration // keep-alive wait for the next request
	headTimeout time.Duration // reading one request head

	handoff   chan net.Conn
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	acceptErr error // set before done closes when Accept failed for good

	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup
}

func newFastServer(s *Server, ln net.Listener, idle, head time.Duration) *fastServer {
	fs := &fastServer{s: s, ln: ln, idleTimeout: idle, headTimeout: head,
		handoff: make(chan net.Conn), done: make(chan struct{}), conns: map[*fastConn]struct{}{}}
	go fs.acceptLoop()
	go fs.sweep()
	return fs
}

// Accept returns the next handed-off connection (net.Listener).
func (fs *fastServer) Accept() (net.Conn, error) {
	select {
	case c := <-fs.handoff:
		return c, nil
	case <-fs.done:
		if fs.acceptErr != nil {
			return nil, fs.acceptErr
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting (net.Listener); connections already open stay.
func (fs *fastServer) Close() error {
	var err error
	fs.closeOnce.Do(func() {
		err = fs.ln.Close()
		close(fs.done)
	})
	return err
}

// Addr is the real listener's address (net.Listener).
func (fs *fastServer) Addr() net.Addr { return fs.ln.Addr() }

func (fs *fastServer) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := fs.ln.Accept()
		if err != nil {
			select {
			case <-fs.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Like net/http: wait and retry (EMFILE and the like).
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			fs.closeOnce.Do(func() {
				fs.acceptErr = err
				close(fs.done)
			})
			return
		}
		backoff = 0
		fc := &fastConn{fs: fs, c: c, remote: c.RemoteAddr().String()}
		fs.mu.Lock()
		if fs.shutting.Load() {
			fs.mu.Unlock()
			c.Close()
			continue
		}
		fs.conns[fc] = struct{}{}
		fs.wg.Add(1)
		fs.mu.Unlock()
		go fc.serve()
	}
}

// sweep enforces the idle and head timeouts, once a second until shutdown:
// it moves a connection's read deadline into the past, which wakes its
// read.
func (fs *fastServer) sweep() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range t.C {
		if fs.shutting.Load() {
			return
		}
		now := time.Now().UnixNano()
		fs.mu.Lock()
		for fc := range fs.conns {
			fc.mu.Lock()
			age := time.Duration(now - fc.since)
			if fc.state == fcIdle && fs.idleTimeout > 0 && age > fs.idleTimeout ||
				fc.state == fcHead && fs.headTimeout > 0 && age > fs.headTimeout {
				fc.kickLocked()
			}
			fc.mu.Unlock()
		}
		fs.mu.Unlock()
	}
}

// shutdown stops accepting, closes idle connections, lets busy ones finish
// their request (answered with Connection: close) and waits for all of them,
// or until ctx ends, when the rest are closed.
func (fs *fastServer) shutdown(ctx context.Context) error {
	fs.shutting.Store(true)
	fs.Close()
	fs.mu.Lock()
	for fc := range fs.conns {
		fc.mu.Lock()
		if fc.state == fcIdle {
			fc.kickLocked()
		}
		fc.mu.Unlock()
	}
	fs.mu.Unlock()
	waited := make(chan struct{})
	go func() { fs.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		fs.mu.Lock()
		for fc := range fs.conns {
			fc.c.Close()
		}
		fs.mu.Unlock()
		return ctx.Err()
	}
}

// fastConn is one connection on the fast path.
type fastConn struct {
	fs     *fastServer
	c      net.Conn
	remote string

	mu     sync.Mutex
	state  int32
	since  int64 // UnixNano of the last state change
	kicked bool  // the read deadline was moved into the past

	buf        []byte // read buffer (fastBufSize)
	r, w       int    // unread bytes are buf[r:w]
	model, ver string // the last request's names, reused while they repeat
	out, head  []byte // response body and head buffers
}

// kickLocked wakes the connection's blocked read (fc.mu held).
func (fc *fastConn) kickLocked() {
	if !fc.kicked {
		fc.kicked = true
		_ = fc.c.SetReadDeadline(time.Unix(1, 0))
	}
}

// setState records a state change; it returns false when the connection
// must close instead (shutdown began and the connection is idle). A kick
// that lands just as a request begins is undone so the request completes.
func (fc *fastConn) setState(st int32, now time.Time) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if st == fcIdle && fc.fs.shutting.Load() {
		return false
	}
	if fc.kicked && st != fcIdle {
		if fc.state == fcIdle && st == fcHead && fc.fs.shutting.Load() {
			// Bytes of a request arrived as shutdown kicked the idle
			// connection: serve it (Connection: close follows).
			fc.kicked = false
			_ = fc.c.SetReadDeadline(time.Time{})
		} else {
			return false
		}
	}
	fc.state, fc.since = st, now.UnixNano()
	return true
}

func (fc *fastConn) serve() {
	defer func() {
		fc.fs.mu.Lock()
		delete(fc.fs.conns, fc)
		fc.fs.mu.Unlock()
		fc.fs.wg.Done()
	}()
	fc.buf = make([]byte, fastBufSize)
	handedOff := false
	defer func() {
		if p := recover(); p != nil {
			// A bug of the fast path outside a request's own recovery: the
			// connection ends, the server stays up.
			fc.fs.s.log.Error("panic on a fast-path connection", "remote", fc.remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		if !handedOff {
			fc.c.Close()
		}
	}()
	for {
		if fc.r == fc.w {
			fc.r, fc.w = 0, 0
			if !fc.setState(fcIdle, time.Now()) {
				return
			}
		}
		h, ok := fc.readHead()
		if !ok {
			return
		}
		if !h.fast {
			handedOff = fc.handOff()
			return
		}
		if !fc.serveInfer(&h) || h.close || fc.fs.shutting.Load() {
			return
		}
	}
}

// handOff gives the connection, with its unread bytes, to net/http.
func (fc *fastConn) handOff() bool {
	pc := &prefixConn{Conn: fc.c, pre: fc.buf[fc.r:fc.w]}
	fc.buf = nil
	select {
	case fc.fs.handoff <- pc:
		return true
	case <-fc.fs.done:
		pc.Close()
		return true
	}
}

// prefixConn reads pre before the connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// fastHead is a parsed request head.
type fastHead struct {
	fast           bool   // served here; false: hand the connection off
	size           int    // bytes of the head, final CRLFCRLF included
	model, version []byte // from the path
	contentLength  int64
	ihcl           []byte // Inference-Header-Content-Length value, nil if absent
	close          bool   // Connection: close
	path           []byte
}

// readHead reads until buf[r:] holds a whole head and parses it. ok false:
// the connection ends (read error, EOF, timeout, shutdown).
func (fc *fastConn) readHead() (h fastHead, ok bool) {
	for {
		if i := bytes.Index(fc.buf[fc.r:fc.w], crlfcrlf); i >= 0 {
			h = parseFastHead(fc.buf[fc.r:fc.r+i+4], fc.fs.s.opts.MaxBodyBytes)
			return h, true
		}
		if fc.w-fc.r == len(fc.buf) {
			return fastHead{}, true // a head larger than the buffer: net/http's
		}
		if fc.w == len(fc.buf) {
			fc.w = copy(fc.buf, fc.buf[fc.r:fc.w])
			fc.r = 0
		}
		n, err := fc.c.Read(fc.buf[fc.w:])
		if n > 0 {
			if fc.r == fc.w && !fc.setState(fcHead, time.Now()) {
				return fastHead{}, false
			}
			fc.w += n
			continue
		}
		if err != nil {
			return fastHead{}, false
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// parseFastHead parses a request head (ending in CRLFCRLF). Anything it
// does not take exactly — see the package comment on the fast path — gives
// fast false.
func parseFastHead(b []byte, maxBody int64) (h fastHead) {
	h.size = len(b)
	line, rest, _ := bytes.Cut(b, crlf)
	const pre, post = "POST ", " HTTP/1.1"
	if len(line) < len(pre)+len(post) || !bytes.HasPrefix(line, []byte(pre)) || !bytes.HasSuffix(line, []byte(post)) {
		return h
	}
	path := line[len(pre) : len(line)-len(post)]
	var ok bool
	if h.model, h.version, ok = parseInferPath(path); !ok {
		return h
	}
	h.path = path
	h.contentLength = -1
	hosts, ihclSeen := 0, false
	for len(rest) > 2 { // the final CRLF remains
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return h // includes obs-fold (a line starting with SP/HTAB)
		}
		name := line[:colon]
		val := bytes.Trim(line[colon+1:], " \t")
		if !isFieldValue(val) {
			return h
		}
		switch {
		case equalFoldASCII(name, "content-length"):
			if h.contentLength >= 0 || len(val) == 0 || len(val) > 18 {
				return h
			}
			n := int64(0)
			for _, c := range val {
				if c < '0' || c > '9' {
					return h
				}
				n = n*10 + int64(c-'0')
			}
			h.contentLength = n
		case equalFoldASCII(name, "inference-header-content-length"):
			if ihclSeen {
				return h
			}
			// An empty value is no value, as for Handler (Header.Get).
			ihclSeen, h.ihcl = true, nil
			if len(val) > 0 {
				h.ihcl = val
			}
		case equalFoldASCII(name, "host"):
			if !isHostValue(val) {
				return h // net/http answers 400
			}
			hosts++
		case equalFoldASCII(name, "connection"):
			switch {
			case equalFoldASCII(val, "close"):
				h.close = true
			case equalFoldASCII(val, "keep-alive"):
			default:
				return h
			}
		case equalFoldASCII(name, "transfer-encoding"), equalFoldASCII(name, "expect"),
			equalFoldASCII(name, "upgrade"), equalFoldASCII(name, "te"), equalFoldASCII(name, "trailer"):
			return h
		}
	}
	if hosts != 1 || h.contentLength <= 0 || h.contentLength > maxBody {
		return h
	}
	h.fast = true
	return h
}

var crlf = []byte("\r\n")

// parseInferPath matches /v2/models/{m}/infer and
// /v2/models/{m}/versions/{v}/infer with segments of RFC 3986 pchar
// without percent-encoding, and neither "." nor "..".
func parseInferPath(p []byte) (model, version []byte, ok bool) {
	const pre = "/v2/models/"
	if !bytes.HasPrefix(p, []byte(pre)) {
		return nil, nil, false
	}
	for _, c := range p {
		if !isPathChar(c) {
			return nil, nil, false
		}
	}
	// Up to four segments after the prefix, without allocating.
	var seg [5][]byte
	n := 0
	for rest := p[len(pre):]; ; n++ {
		if n == len(seg) {
			return nil, nil, false
		}
		i := bytes.IndexByte(rest, '/')
		if i < 0 {
			seg[n] = rest
			n++
			break
		}
		seg[n], rest = rest[:i], rest[i+1:]
	}
	switch {
	case n == 2 && string(seg[1]) == "infer":
		model = seg[0]
	case n == 4 && string(seg[1]) == "versions" && string(seg[3]) == "infer":
		model, version = seg[0], seg[2]
		if !goodSegment(version) {
			return nil, nil, false
		}
	default:
		return nil, nil, false
	}
	if !goodSegment(model) {
		return nil, nil, false
	}
	return model, version, true
}

func goodSegment(s []byte) bool {
	return len(s) > 0 && string(s) != "." && string(s) != ".."
}

// isPathChar: unreserved, sub-delims, ':', '@' and '/'.
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// isToken reports an RFC 9110 token.
func isToken(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return len(b) > 0
}

// isHostValue: the characters net/http accepts in a Host header.
func isHostValue(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=@[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isFieldValue: visible ASCII, space and tab (no obs-text, no controls).
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// equalFoldASCII compares b with lower (lower-case ASCII) ignoring case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// serveInfer reads the body of h, infers and writes the response; false:
// the connection ends.
func (fc *fastConn) serveInfer(h *fastHead) bool {
	start := time.Now()
	if !fc.setState(fcBusy, start) {
		return false
	}
	s := fc.fs.s
	s.metrics.httpInfl.Inc()
	defer s.metrics.httpInfl.Dec()
	// The body: in place when it fits in the buffer after the head, else
	// in a pooled buffer.
	fc.r += h.size
	n := int(h.contentLength)
	var body []byte
	var pooled *[]byte
	if fc.r+n <= len(fc.buf) {
		for fc.w-fc.r < n {
			m, err := fc.c.Read(fc.buf[fc.w:])
			fc.w += m
			if err != nil && fc.w-fc.r < n {
				return false
			}
		}
		body = fc.buf[fc.r : fc.r+n]
		fc.r += n
	} else {
		pooled = getBuf()
		defer putBuf(pooled)
		body = slices.Grow((*pooled)[:0], n)[:n]
		*pooled = body
		k := copy(body, fc.buf[fc.r:fc.w])
		fc.r += k
		if _, err := io.ReadFull(fc.c, body[k:]); err != nil {
			return false
		}
	}
	if string(h.model) != fc.model {
		fc.model = string(h.model)
	}
	if string(h.version) != fc.ver {
		fc.ver = string(h.version)
	}
	closing := h.close || s.draining.Load()
	status, hl := fc.infer(body, h)
	return fc.finish(h, status, hl, start, closing)
}

// infer answers the request (Server.inferREST) into fc.out, recovering a
// panic as a 500. hl is the Inference-Header-Content-Length of a binary
// response, else -1.
func (fc *fastConn) infer(body []byte, h *fastHead) (status, hl int) {
	s := fc.fs.s
	defer func() {
		if p := recover(); p != nil {
			s.logPanic(http.MethodPost, string(h.path), p)
			status, hl = fc.errorBody(http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
		}
	}()
	var msg string
	fc.out, hl, status, msg = s.inferREST(context.Background(), fc.out[:0], body, h.ihcl, fc.model, fc.ver)
	if status != http.StatusOK {
		return fc.errorBody(status, msg)
	}
	return status, hl
}

// errorBody puts {"error": msg} in fc.out.
func (fc *fastConn) errorBody(status int, msg string) (int, int) {
	fc.out = append(fc.out[:0], `{"error":`...)
	fc.out = appendString(fc.out, msg)
	fc.out = append(fc.out, '}')
	return status, -1
}

// finish writes the response head and fc.out, logs the request, and
// reports whether the connection goes on.
func (fc *fastConn) finish(h *fastHead, status, hl int, start time.Time, closing bool) bool {
	body := fc.out
	fc.head = appendFastHead(fc.head[:0], status, hl, len(body), closing, start)
	var err error
	if len(body) <= fastCopyMax {
		fc.head = append(fc.head, body...)
		_, err = fc.c.Write(fc.head)
	} else {
		bufs := net.Buffers{fc.head, body}
		_, err = bufs.WriteTo(fc.c)
	}
	if cap(fc.out) > maxPooled {
		fc.out = nil
	}
	if cap(fc.head) > maxPooled {
		fc.head = nil
	}
	if s, lvl := fc.fs.s, requestLevel(status); s.log.Enabled(context.Background(), lvl) {
		s.logRequest(context.Background(), lvl, http.MethodPost, string(h.path), status, h.contentLength, int64(len(body)), start, fc.remote)
	}
	return err == nil && !closing
}

// fastCopyMax: a response body up to this size is copied after its head
// and sent with one write; a larger one goes out with writev.
const fastCopyMax = 64 << 10

// appendFastHead appends an HTTP/1.1 response head.
func appendFastHead(b []byte, status, hl, bodyLen int, closing bool, now time.Time) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	if hl >= 0 {
		b = append(b, "\r\nContent-Type: application/octet-stream\r\n"+HeaderContentLength+": "...)
		b = strconv.AppendInt(b, int64(hl), 10)
	} else {
		b = append(b, "\r\nContent-Type: application/json"...)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(bodyLen), 10)
	b = append(b, "\r\nDate: "...)
	b = append(b, httpDate(now)...)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	return append(b, "\r\n\r\n"...)
}

// httpDate formats now as an HTTP Date, once per second.
func httpDate(now time.Time) string {
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
