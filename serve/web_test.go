package serve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/deepgo/deepgo/data/image"
	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/serve"
)

// TestWebPageServed checks the page and its assets without a browser.
func TestWebPageServed(t *testing.T) {
	s := serve.New(serve.Options{})
	defer s.Close()
	serve.MountWeb(s, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/":               `<canvas id="pad"`,
		"/web/app.js":     "function preprocess(",
		"/web/style.css":  ".pred-digit",
		"/monitor/status": `"drift_enabled":false`,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %s, body lacks %q", path, resp.Status, want)
		}
	}
	// The page loads nothing from other hosts.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
		t.Error("the page refers to another host")
	}
	if resp, err := http.Get(srv.URL + "/nope"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %v %v, want 404", resp.Status, err)
	}
}

const chromium = "/usr/bin/chromium"

// stroke is a polyline in canvas pixels (the pad is 280×280).
type stroke [][2]float64

// TestWebDrawDigitInChromium draws digits on the page in headless Chromium
// (a "1" with the mouse, a "7" with a finger) against a server hosting a
// model trained on MNIST in this test, and reads the prediction back from
// the page. It also checks that the page's MNIST preprocessing in
// JavaScript matches data/image's on the same drawing. Set
// DEEPGO_WEB_SCREENSHOT=file.png to save a screenshot.
func TestWebDrawDigitInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("install chromium (Debian: apt-get install chromium) to run the browser test")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	pkg, _ := trainedDigits(t)
	s := serve.New(serve.Options{MaxDelay: -1})
	defer s.Close()
	if err := s.Repository().LoadPackage("mnist", 1, pkg); err != nil {
		t.Fatal(err)
	}
	mon, err := serve.EnableMonitor(s, monitor.Options{Window: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	serve.MountWeb(s, mon)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Steps(ignore(chromedp.Poll[bool](`window.deepgo && window.deepgo.state.imageInput === true`, chromedp.WithPollingTimeout(20*time.Second)))),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}

	one := stroke{{150, 40}, {146, 100}, {142, 160}, {138, 240}}
	seven := stroke{{70, 50}, {130, 48}, {210, 46}, {190, 100}, {160, 160}, {130, 245}}
	for _, c := range []struct {
		name    string
		strokes []stroke
		touch   bool
		want    int
	}{{"one by mouse", []stroke{one}, false, 1}, {"seven by touch", []stroke{seven}, true, 7}} {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#clear"))); err != nil {
			t.Fatal(err)
		}
		rect, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ X, Y, W float64 }](`(() => { const r = document.getElementById("pad").getBoundingClientRect(); return {X: r.left, Y: r.top, W: r.width}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		k := rect.W / 280
		for _, st := range c.strokes {
			if err := draw(ctx, st, rect.X, rect.Y, k, c.touch); err != nil {
				t.Fatalf("%s: drawing: %v", c.name, err)
			}
		}
		type result struct {
			Digit int       `json:"digit"`
			Probs []float64 `json:"probs"`
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const s = window.deepgo.state; return s.lastResult !== null && !s.inflight && !s.dirty; })()`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: waiting for the prediction: %v", c.name, err)
		}
		res, err := chromedp.Run(ctx, chromedp.Evaluate[result](`window.deepgo.state.lastResult`))
		if err != nil {
			t.Fatal(err)
		}
		shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#pred-digit")))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: predicted %d (%s shown), probabilities %.3f", c.name, res.Digit, shown, res.Probs)
		if res.Digit != c.want || strings.TrimSpace(shown) != fmt.Sprint(c.want) {
			t.Errorf("%s: the page predicts %d and shows %q, want %d", c.name, res.Digit, shown, c.want)
		}
		if len(res.Probs) != 10 || math.Abs(sum(res.Probs)-1) > 1e-4 {
			t.Errorf("%s: probabilities %v do not sum to 1", c.name, res.Probs)
		}
		checkPreprocessing(t, ctx, c.name)
	}

	// The page shows live metrics and drift status from /monitor/status.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("m-inf").textContent !== "–"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("metrics panel: %v", err)
	}
	inferences, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#m-inf")))
	if err != nil {
		t.Fatal(err)
	}
	drift, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#drift-badge")))
	if err != nil {
		t.Fatal(err)
	}
	// The drawing (sent live, stroke by stroke) is far from MNIST's
	// statistics: with windows of 20 rows the page shows drift or a
	// collecting window, never the initial placeholder.
	if inferences == "0" || drift == "…" || strings.EqualFold(drift, "off") {
		t.Errorf("metrics panel shows %q inferences, drift badge %q", inferences, drift)
	}
	features, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#drift-body")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToUpper(features), "INPUT FEATURE PSI") {
		t.Errorf("drift panel lacks the feature PSI list: %q", features)
	}
	if path := os.Getenv("DEEPGO_WEB_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ignore drops an action's result.
func ignore[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// draw dispatches mouse or touch events along st (canvas pixels, scaled by
// k and offset by the canvas position), in small steps as a hand would.
func draw(ctx context.Context, st stroke, x0, y0, k float64, touch bool) error {
	var pts [][2]float64
	for i := 0; i+1 < len(st); i++ {
		a, b := st[i], st[i+1]
		n := int(math.Max(math.Abs(b[0]-a[0]), math.Abs(b[1]-a[1]))/6) + 1
		for j := 0; j < n; j++ {
			f := float64(j) / float64(n)
			pts = append(pts, [2]float64{x0 + k*(a[0]+f*(b[0]-a[0])), y0 + k*(a[1]+f*(b[1]-a[1]))})
		}
	}
	last := st[len(st)-1]
	pts = append(pts, [2]float64{x0 + k*last[0], y0 + k*last[1]})
	one := 1.0
	id := 1.0
	radius := 4.0
	for i, p := range pts {
		var err error
		if touch {
			typ := input.DispatchTouchEventTypeTouchMove
			if i == 0 {
				typ = input.DispatchTouchEventTypeTouchStart
			}
			_, err = chromedp.Call(ctx, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: typ,
				TouchPoints: []*input.TouchPoint{{X: p[0], Y: p[1], ID: &id, RadiusX: &radius, RadiusY: &radius, Force: &one}}})
		} else {
			typ := input.DispatchMouseEventTypeMouseMoved
			if i == 0 {
				typ = input.DispatchMouseEventTypeMousePressed
			}
			err = chromedp.Do(ctx, chromedp.MouseEvent(typ, p[0], p[1], chromedp.ButtonLeft, chromedp.ClickCount(1),
				func(q *input.DispatchMouseEventParams) { q.Buttons = 1 }))
		}
		if err != nil {
			return err
		}
	}
	end := pts[len(pts)-1]
	if touch {
		_, err := chromedp.Call(ctx, input.DispatchTouchEvent, input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{}})
		return err
	}
	return chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, end[0], end[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

// checkPreprocessing compares the 28×28 input the page sent with what
// data/image makes of the same drawing (the canvas as PNG).
func checkPreprocessing(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sent, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.deepgo.state.lastInput`))
	if err != nil {
		t.Fatal(err)
	}
	url, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("pad").toDataURL("image/png")`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := image.Read(bytes.NewReader(raw), image.MNIST)
	if err != nil {
		t.Fatal(err)
	}
	want := x.Data()
	if len(sent) != len(want) {
		t.Fatalf("%s: the page sent %d values, want %d", name, len(sent), len(want))
	}
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(sent[i]-float64(want[i])))
	}
	if worst > 1e-3 {
		js, _ := json.Marshal(sent)
		t.Errorf("%s: the page's preprocessing differs from data/image by up to %.4f\n%s", name, worst, js)
	}
}
