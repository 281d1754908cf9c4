package serve

import (
	"fmt"
	"strconv"

	"github.com/deepgo/deepgo/monitor"
	"github.com/deepgo/deepgo/tensor"
)

// EnableMonitor attaches a drift monitor to s: every executed batch of every
// model is fed to it (Server.Observe), its metrics go to s's registry (so
// /metrics shows deepgo_drift_psi{model,feature} and the others) and its
// alerts to s's logger, unless opts sets Registerer or Logger. Each model
// version's reference profile is read from its package's "monitor" field
// when the version is first seen, so reloads pick up the new profile; a
// package without one is listed as unmonitored. Close the monitor (after
// the server stopped) to flush pending webhook alerts.
func EnableMonitor(s *Server, opts monitor.Options) (*monitor.Monitor, error) {
	if opts.Registerer == nil {
		opts.Registerer = s.Registry()
	}
	if opts.Logger == nil {
		opts.Logger = s.Logger()
	}
	if opts.Profiles == nil {
		opts.Profiles = func(model, version string) (*monitor.Profile, error) {
			pkg, v, err := s.Package(model)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", monitor.ErrStaleVersion, err)
			}
			if strconv.FormatInt(v, 10) != version {
				return nil, fmt.Errorf("%w: version %s of model %q was replaced by version %d", monitor.ErrStaleVersion, version, model, v)
			}
			return monitor.FromPackage(pkg)
		}
	}
	mon, err := monitor.New(opts)
	if err != nil {
		return nil, err
	}
	s.Observe(func(model string, version int64, input, output *tensor.Tensor) {
		mon.Observe(model, strconv.FormatInt(version, 10), input, output)
	})
	return mon, nil
}
