package serve

import (
	"os"
	"path/filepath"

	"github.com/sluice-gw/sluice/sdk/profiling"
)

// ProfileDirEnv names an opt-in for performance work: when the variable is
// set to a directory, every plugin process writes profiles there (see
// package profiling). Unset, nothing is started.
const ProfileDirEnv = profiling.DirEnv

// startProfile starts the profiles ProfileDirEnv asks for and returns the
// function that stops and writes the CPU profile.
func startProfile() (stop func()) {
	return profiling.Start(filepath.Base(os.Args[0]), func(msg string, err error) {
		Logger().Warn(msg, "error", err.Error())
	})
}
