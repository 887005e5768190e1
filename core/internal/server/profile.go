package server

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
)

// profileDirEnv is the opt-in CPU profile of the gateway process, for
// performance work: when set to a directory, the data path writes
// sluice-<pid>.cpu.pprof there, from the first Serve to Shutdown. Plugins
// read the same variable (sdk/serve.ProfileDirEnv), so one setting profiles
// the whole data path, e.g. under `make bench`.
const profileDirEnv = "SLUICE_PPROF_DIR"

// cpuProfile is the process's profile; pprof allows one at a time.
var cpuProfile struct {
	sync.Mutex
	f *os.File
}

// startProfile starts the CPU profile profileDirEnv asks for, once per
// process. Failing to start it is logged, never fatal.
func (s *Server) startProfile() {
	dir := os.Getenv(profileDirEnv)
	if dir == "" {
		return
	}
	cpuProfile.Lock()
	defer cpuProfile.Unlock()
	if cpuProfile.f != nil {
		return
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("sluice-%d.cpu.pprof", os.Getpid())))
	if err != nil {
		s.log.Warn("cannot write CPU profile", "error", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		s.log.Warn("cannot start CPU profile", "error", err)
		_ = f.Close()
		return
	}
	cpuProfile.f = f
}

// stopProfile writes the profile started by startProfile, if any.
func stopProfile() {
	cpuProfile.Lock()
	defer cpuProfile.Unlock()
	if cpuProfile.f == nil {
		return
	}
	pprof.StopCPUProfile()
	_ = cpuProfile.f.Close()
	cpuProfile.f = nil
}
