package monitor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Window metrics that rules can test (see Rule.Metric). A rule on one
// feature group uses MetricFeaturePSI + ":" + the feature's name.
const (
	// MetricFeaturePSIMax is the largest PSI over the feature groups.
	MetricFeaturePSIMax = "feature_psi_max"
	// MetricFeaturePSI prefixes the PSI of one feature group
	// ("feature_psi:mean").
	MetricFeaturePSI = "feature_psi"
	// MetricPredictionPSI is the PSI of the predicted-class distribution.
	MetricPredictionPSI = "prediction_psi"
	// MetricConfidencePSI is the PSI of the confidence histogram.
	MetricConfidencePSI = "confidence_psi"
	// MetricConfidenceMean is the mean confidence of the window.
	MetricConfidenceMean = "confidence_mean"
)

// Severities of alert rules.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Rule is an alert rule checked after every evaluated window: it fires when
// Metric compared with Threshold by Op holds for For consecutive windows
// and, when ForDuration > 0, has held for at least that long.
type Rule struct {
	// Name identifies the rule in logs, metrics and webhooks (default: the
	// metric).
	Name string `json:"name"`
	// Metric is one of the Metric constants, or "feature_psi:NAME".
	Metric string `json:"metric"`
	// Op is ">" (default), ">=", "<" or "<=".
	Op string `json:"op"`
	// Threshold the metric is compared with.
	Threshold float64 `json:"threshold"`
	// For is the number of consecutive windows the condition must hold
	// (default 1).
	For int `json:"for"`
	// ForDuration is how long the condition must have held (0: no
	// minimum).
	ForDuration time.Duration `json:"for_duration,omitempty"`
	// Severity is SeverityInfo, SeverityWarning or SeverityCritical
	// (default warning).
	Severity string `json:"severity"`
}

// DefaultRules are the rules a Monitor uses when Options.Rules is nil: a
// warning on a moderate and a critical alert on a significant input shift
// (PSI 0.1 and 0.25, the usual PSI thresholds) held for two windows, and a
// warning on a significant shift of the predicted classes.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "input_drift_moderate", Metric: MetricFeaturePSIMax, Op: ">", Threshold: 0.1, For: 2, Severity: SeverityWarning},
		{Name: "input_drift", Metric: MetricFeaturePSIMax, Op: ">", Threshold: 0.25, For: 2, Severity: SeverityCritical},
		{Name: "prediction_drift", Metric: MetricPredictionPSI, Op: ">", Threshold: 0.25, For: 2, Severity: SeverityWarning},
	}
}

// withDefaults fills in defaults and checks the rule.
func (r Rule) withDefaults() (Rule, error) {
	if r.Op == "" {
		r.Op = ">"
	}
	if r.For <= 0 {
		r.For = 1
	}
	if r.Severity == "" {
		r.Severity = SeverityWarning
	}
	if r.Name == "" {
		r.Name = r.Metric
	}
	switch r.Op {
	case ">", ">=", "<", "<=":
	default:
		return r, fmt.Errorf("rule %q: op %q: want >, >=, < or <=", r.Name, r.Op)
	}
	switch r.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return r, fmt.Errorf("rule %q: severity %q: want info, warning or critical", r.Name, r.Severity)
	}
	switch {
	case r.Metric == MetricFeaturePSIMax, r.Metric == MetricPredictionPSI, r.Metric == MetricConfidencePSI, r.Metric == MetricConfidenceMean:
	case strings.HasPrefix(r.Metric, MetricFeaturePSI+":") && len(r.Metric) > len(MetricFeaturePSI)+1:
	default:
		return r, fmt.Errorf("rule %q: unknown metric %q (want %s, %s:NAME, %s, %s or %s)", r.Name, r.Metric,
			MetricFeaturePSIMax, MetricFeaturePSI, MetricPredictionPSI, MetricConfidencePSI, MetricConfidenceMean)
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		return r, fmt.Errorf("rule %q: threshold must be finite", r.Name)
	}
	if r.ForDuration < 0 {
		return r, fmt.Errorf("rule %q: for_duration must not be negative", r.Name)
	}
	return r, nil
}

// holds reports whether v satisfies the rule's comparison (NaN never does).
func (r Rule) holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch r.Op {
	case ">=":
		return v >= r.Threshold
	case "<":
		return v < r.Threshold
	case "<=":
		return v <= r.Threshold
	}
	return v > r.Threshold
}

// String returns the rule in ParseRule's syntax.
func (r Rule) String() string {
	s := fmt.Sprintf("%s%s%s", r.Metric, r.Op, strconv.FormatFloat(r.Threshold, 'g', -1, 64))
	if r.For > 1 {
		s += fmt.Sprintf(",for=%d", r.For)
	}
	if r.ForDuration > 0 {
		s += ",for=" + r.ForDuration.String()
	}
	if r.Severity != "" {
		s += ",severity=" + r.Severity
	}
	if r.Name != "" && r.Name != r.Metric {
		s += ",name=" + r.Name
	}
	return s
}

// ParseRule parses a rule written as METRIC OP THRESHOLD followed by
// optional comma-separated settings: for=N (consecutive windows),
// for=DURATION (e.g. 5m), severity=S and name=NAME, e.g.
//
//	feature_psi_max>0.25,for=3,severity=critical,name=input_drift
//	prediction_psi>=0.2,for=2m
//	confidence_mean<0.8
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ",")
	cond := strings.TrimSpace(parts[0])
	var r Rule
	i := strings.IndexAny(cond, "<>")
	if i <= 0 {
		return r, fmt.Errorf("rule %q: want METRIC>THRESHOLD (or >=, <, <=)", s)
	}
	r.Metric = strings.TrimSpace(cond[:i])
	rest := cond[i:]
	r.Op = rest[:1]
	if strings.HasPrefix(rest[1:], "=") {
		r.Op = rest[:2]
	}
	th, err := strconv.ParseFloat(strings.TrimSpace(rest[len(r.Op):]), 64)
	if err != nil {
		return r, fmt.Errorf("rule %q: threshold %q is not a number", s, strings.TrimSpace(rest[len(r.Op):]))
	}
	r.Threshold = th
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return r, fmt.Errorf("rule %q: setting %q: want KEY=VALUE", s, p)
		}
		switch strings.TrimSpace(k) {
		case "for":
			v = strings.TrimSpace(v)
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				r.For = n
			} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
				r.ForDuration = d
			} else {
				return r, fmt.Errorf("rule %q: for=%s: want a number of windows or a duration such as 5m", s, v)
			}
		case "severity":
			r.Severity = strings.TrimSpace(v)
		case "name":
			r.Name = strings.TrimSpace(v)
		default:
			return r, fmt.Errorf("rule %q: unknown setting %q (want for, severity or name)", s, k)
		}
	}
	return r.withDefaults()
}
