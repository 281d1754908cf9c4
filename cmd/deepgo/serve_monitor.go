package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/serve"
)

// monitorFlags are the drift-monitoring and web-page flags of `deepgo serve`.
var monitorFlags struct {
	web            bool
	drift          bool
	window         int
	step           int
	maxAge         time.Duration
	interval       time.Duration
	alerts         []string
	webhook        string
	webhookTimeout time.Duration
	webhookRetries int
}

func init() {
	serveFlags = append(serveFlags, func(f *pflag.FlagSet) {
		m := &monitorFlags
		f.BoolVar(&m.web, "web", true, "serve the drawing page with live metrics and drift status at /")
		f.BoolVar(&m.drift, "drift", true, "monitor input and prediction drift against the profile in each model package")
		f.IntVar(&m.window, "drift-window", 500, "rows per drift window")
		f.IntVar(&m.step, "drift-step", 0, "rows between drift evaluations (default: the window, i.e. tumbling windows)")
		f.DurationVar(&m.maxAge, "drift-max-age", 0, "drop rows older than this from the drift window (0: count-based only)")
		f.DurationVar(&m.interval, "drift-interval", 0, "also evaluate drift this often (0: only every --drift-step rows)")
		f.StringArrayVar(&m.alerts, "alert", nil, "drift alert rule METRIC>THRESHOLD[,for=N|DURATION][,severity=S][,name=N] (repeatable; default: input PSI > 0.1 warning and > 0.25 critical, prediction PSI > 0.25 warning, each for 2 windows)")
		f.StringVar(&m.webhook, "alert-webhook", "", "URL that receives drift alerts as JSON POSTs")
		f.DurationVar(&m.webhookTimeout, "alert-webhook-timeout", 5*time.Second, "timeout of one webhook delivery attempt")
		f.IntVar(&m.webhookRetries, "alert-webhook-retries", 3, "retries of a failed webhook delivery")
	})
	serveSetup = append(serveSetup, setupMonitor)
}

// setupMonitor attaches the drift monitor and mounts the web page.
func setupMonitor(ctx context.Context, s *serve.Server) error {
	m := monitorFlags
	var mon *monitor.Monitor
	if m.drift {
		if m.window < 1 || m.step < 0 || m.maxAge < 0 || m.interval < 0 || m.webhookRetries < 0 {
			return usageError{fmt.Errorf("--drift-window must be positive; --drift-step, --drift-max-age, --drift-interval and --alert-webhook-retries must not be negative")}
		}
		opts := monitor.Options{
			Window: m.window, Step: m.step, MaxAge: m.maxAge, Interval: m.interval,
			Webhook: m.webhook, WebhookTimeout: m.webhookTimeout, WebhookRetries: m.webhookRetries,
		}
		if m.webhookRetries == 0 {
			opts.WebhookRetries = -1
		}
		if m.alerts != nil {
			opts.Rules = []monitor.Rule{}
			for _, a := range m.alerts {
				r, err := monitor.ParseRule(a)
				if err != nil {
					return usageError{fmt.Errorf("--alert: %v", err)}
				}
				opts.Rules = append(opts.Rules, r)
			}
		}
		var err error
		if mon, err = serve.EnableMonitor(s, opts); err != nil {
			return usageError{err}
		}
		for _, st := range s.Models() {
			pkg, _, err := s.Package(st.Name)
			if err != nil {
				continue
			}
			if _, err := monitor.FromPackage(pkg); err != nil {
				s.Logger().Warn("drift monitoring off for this model", "model", st.Name, "reason", err.Error())
			}
		}
		go func() {
			<-ctx.Done()
			cctx, cancel := context.WithTimeout(context.Background(), m.webhookTimeout)
			defer cancel()
			mon.Close(cctx)
		}()
	}
	if m.web {
		serve.MountWeb(s, mon)
	}
	return nil
}
