package server

import (
	"sync"

	"github.com/sluice-gw/sluice/sdk/profiling"
)

// cpuProfile is the process's profile (package profiling, opt-in through
// SLUICE_PPROF_DIR), from the first Serve to Shutdown; pprof allows one at a
// time.
var cpuProfile struct {
	sync.Mutex
	started bool
	stop    func()
}

// startProfile starts the profiles profiling.DirEnv asks for, once per
// process. Failing to start them is logged, never fatal.
func (s *Server) startProfile() {
	cpuProfile.Lock()
	defer cpuProfile.Unlock()
	if cpuProfile.started {
		return
	}
	cpuProfile.started = true
	cpuProfile.stop = profiling.Start("sluice", func(msg string, err error) {
		s.log.Warn(msg, "error", err)
	})
}

// stopProfile writes the CPU profile started by startProfile, if any.
func stopProfile() {
	cpuProfile.Lock()
	defer cpuProfile.Unlock()
	if cpuProfile.stop != nil {
		cpuProfile.stop()
		cpuProfile.stop = nil
	}
}
