package ui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/deepgo/deepgo/track/ui"
)

// chromiumPath is Debian's chromium.
const chromiumPath = "/usr/bin/chromium"

// artifactDir is where the browser test saves its screenshots:
// $DEEPGO_TEST_ARTIFACTS if set, else a test temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("DEEPGO_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("DEEPGO_TEST_ARTIFACTS: %v", err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserDashboard opens the dashboard in headless Chromium over a store
// with two runs and a registered model, and checks what a person would see:
// the curves of both runs overlaid (and redrawn on a log scale), the NaN
// point marked, the confusion matrix and per-class table of a run, and the
// registry's versions and aliases with links to the runs that made them. It
// saves screenshots of the three pages.
func TestBrowserDashboard(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("install chromium to run the end-to-end browser test (apt-get install chromium): %s not found", chromiumPath)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	f := newFixture(t)
	srv := httptest.NewServer(ui.Handler(f.store)) // listens on 127.0.0.1
	defer srv.Close()
	out := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	defer acancel()
	var (
		mu     sync.Mutex
		jsErrs []string
	)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			msg = "console.error: " + strings.Join(parts, " ")
		default:
			return
		}
		mu.Lock()
		jsErrs = append(jsErrs, msg)
		mu.Unlock()
	}))
	defer bcancel()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range jsErrs {
			t.Errorf("JavaScript error in the dashboard: %s", e)
		}
	}()

	wait := func(what, js string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(bctx, 20*time.Second)
		defer wcancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('app').innerText`))
			t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatalf("screenshot %s is not a PNG", p)
		}
		t.Logf("screenshot: %s", p)
	}

	// Runs page: both runs' loss curves overlaid in one chart, in two colours.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/#/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	curve := func(run, key string) string {
		return fmt.Sprintf(`svg.chart[data-key=%q] path.curve[data-run=%q]`, key, run)
	}
	both := fmt.Sprintf(`!!document.querySelector(%q) && !!document.querySelector(%q)`, curve(f.runA, "loss"), curve(f.runB, "loss"))
	wait("the loss curves of both runs", both)
	if n := eval(`String(document.querySelectorAll('#runs-table tbody tr').length)`); n != "3" {
		t.Fatalf("runs table has %s rows, want 3", n)
	}
	colours := eval(fmt.Sprintf(`document.querySelector(%q).getAttribute('stroke') + ' ' + document.querySelector(%q).getAttribute('stroke')`, curve(f.runA, "loss"), curve(f.runB, "loss")))
	if c := strings.Fields(colours); len(c) != 2 || c[0] == c[1] {
		t.Fatalf("the two runs' curves have colours %q, want two different ones", colours)
	}
	for _, run := range []string{f.runA, f.runB} {
		// 8 points: one move and 7 line segments
		if d := eval(fmt.Sprintf(`document.querySelector(%q).getAttribute('d')`, curve(run, "loss"))); strings.Count(d, "L") != 7 || !strings.HasPrefix(d, "M") {
			t.Fatalf("run %s loss path %q, want M + 7 L", run, d)
		}
	}
	// run B's NaN val_acc at step 3 breaks its curve and is marked
	if d := eval(fmt.Sprintf(`document.querySelector(%q).getAttribute('d')`, curve(f.runB, "val_acc"))); strings.Count(d, "M") != 2 {
		t.Fatalf("run B val_acc path %q: the NaN point should split it in two", d)
	}
	if title := eval(fmt.Sprintf(`document.querySelector('svg.chart[data-key="val_acc"] path.special[data-run=%q] title').textContent`, f.runB)); !strings.Contains(title, "NaN at step 3") {
		t.Fatalf("NaN marker title %q", title)
	}
	// log scale redraws the curves
	linear := eval(fmt.Sprintf(`document.querySelector(%q).getAttribute('d')`, curve(f.runB, "loss")))
	if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.ID("log-scale"))); err != nil {
		t.Fatalf("click log scale: %v", err)
	}
	wait("log-scale curves", fmt.Sprintf(`(() => { const p = document.querySelector(%q); return !!p && p.getAttribute('d') !== %q; })()`, curve(f.runB, "loss"), linear))
	wait("the log-scale label", `document.querySelector('svg.chart[data-key="loss"]').textContent.includes('log scale')`)
	// sorting by name from the table header
	if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.CSS(`th[data-sort="name"]`))); err != nil {
		t.Fatalf("click name header: %v", err)
	}
	wait("runs sorted by name", `[...document.querySelectorAll('#runs-table tbody tr .run-name')].map(a => a.textContent).join(',') === 'cnn-lr0.01,mlp-lr0.1,tab-baseline'`)
	shot("dashboard-runs.png")
	// leave the log scale off for the next pages (the choice is remembered)
	if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.ID("log-scale"))); err != nil {
		t.Fatalf("click log scale: %v", err)
	}

	// Run page: confusion matrix heat map and per-class metrics.
	eval(fmt.Sprintf(`location.hash = '#/runs/%s'; ''`, f.runA))
	wait("the confusion matrix", `document.querySelectorAll('#confusion-matrix rect.cm-cell').length === 9`)
	wait("the per-class table", `document.querySelectorAll('#per-class tbody tr').length === 3`)
	if cell := eval(`document.querySelector('#confusion-matrix rect.cm-cell[data-true="1"][data-pred="2"] title').textContent`); !strings.Contains(cell, "true 1 → predicted 2: 3") {
		t.Fatalf("confusion cell title %q", cell)
	}
	wait("run A's own curve", fmt.Sprintf(`!!document.querySelector(%q)`, curve(f.runA, "val_acc")))
	shot("dashboard-run.png")

	// Compare page: params side by side, differing ones marked, curves
	// overlaid.
	eval(fmt.Sprintf(`location.hash = '#/compare?runs=%s,%s'; ''`, f.runA, f.runB))
	wait("the comparison", fmt.Sprintf(`!!document.querySelector('#compare-table') && !!document.querySelector(%q) && !!document.querySelector(%q)`, curve(f.runA, "loss"), curve(f.runB, "loss")))
	if diff := eval(`[...document.querySelectorAll('#compare-table tr.diff td:first-child')].map(td => td.textContent).join(',')`); !strings.Contains(diff, "lr") || strings.Contains(diff, "epochs") {
		t.Errorf("differing rows %q, want lr and not epochs", diff)
	}
	shot("dashboard-compare.png")

	// Registry page: versions, aliases, and links to the runs.
	eval(`location.hash = '#/models'; ''`)
	wait("the registry", `!!document.querySelector('.model-card[data-model="mnist-cnn"] tr[data-version="2"]')`)
	card := eval(`document.querySelector('.model-card[data-model="mnist-cnn"]').innerText`)
	for _, want := range []string{"@production", "@staging", "v1", "v2", "cnn-lr0.01", "mlp-lr0.1"} {
		if !strings.Contains(card, want) {
			t.Errorf("registry card lacks %q:\n%s", want, card)
		}
	}
	if v2 := eval(`document.querySelector('tr[data-version="2"]').innerText`); !strings.Contains(v2, "@production") || !strings.Contains(v2, "cnn-lr0.01") {
		t.Errorf("version 2 row %q, want alias @production and run cnn-lr0.01", v2)
	}
	if href := eval(`document.querySelector('tr[data-version="1"] a.run-name').getAttribute('href')`); href != "#/runs/"+f.runB {
		t.Errorf("version 1 links to %q, want #/runs/%s", href, f.runB)
	}
	shot("dashboard-models.png")
	// the link leads to the run that made the version
	if _, err := chromedp.Run(bctx, chromedp.Click(chromedp.CSS(`tr[data-version="1"] a.run-name`))); err != nil {
		t.Fatalf("click version link: %v", err)
	}
	wait("run B's page", `document.querySelector('h1') && document.querySelector('h1').textContent.includes('mlp-lr0.1')`)
}
