package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// ProfileDirEnv names an opt-in for performance work: when the variable is
// set to a directory, every plugin process writes a CPU profile of its whole
// life there on a clean exit, as <plugin binary>-<pid>.cpu.pprof. The core
// passes SLUICE_* variables to its plugins and writes its own profile to the
// same directory (core/internal/server), so one variable profiles the whole
// data path under `make bench`. Unset, nothing is started.
const ProfileDirEnv = "SLUICE_PPROF_DIR"

// startProfile starts the CPU profile ProfileDirEnv asks for and returns the
// function that stops and writes it. A profile that cannot start is logged
// and skipped: it never stops the plugin from serving.
func startProfile() (stop func()) {
	dir := os.Getenv(ProfileDirEnv)
	if dir == "" {
		return func() {}
	}
	name := fmt.Sprintf("%s-%d.cpu.pprof", filepath.Base(os.Args[0]), os.Getpid())
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		Logger().Warn("cannot write CPU profile", "error", err.Error())
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		Logger().Warn("cannot start CPU profile", "error", err.Error())
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
