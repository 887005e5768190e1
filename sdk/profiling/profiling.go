// Package profiling is the opt-in profiling of Sluice processes, the core and
// every plugin alike, for performance work. It is off unless the DirEnv
// variable names a directory; the core passes SLUICE_* variables on to its
// plugins, so one setting profiles the whole data path (under `make bench`,
// for instance).
//
// With the variable set, a process writes:
//   - <name>-<pid>.cpu.pprof: a CPU profile from Start until the returned stop
//     function runs;
//   - <name>-<pid>.heap.pprof, <name>-<pid>.goroutine.pprof and
//     <name>-<pid>.memstats.txt (where the process's memory is: heap, stacks,
//     what was returned to the OS) each time it receives SIGUSR2, overwritten
//     on every signal: what holds memory and which goroutines exist at the
//     moment that matters (10,000 streams open, say), which a profile taken
//     at exit would no longer show.
package profiling

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// DirEnv names the directory profiles are written to.
const DirEnv = "SLUICE_PPROF_DIR"

// Start starts what DirEnv asks for in a process called name and returns the
// function that stops the CPU profile and writes it. Problems go to warn and
// never stop the process from serving; without DirEnv nothing starts and
// stop does nothing.
func Start(name string, warn func(msg string, err error)) (stop func()) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		return func() {}
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%d", name, os.Getpid()))
	snapshots := make(chan os.Signal, 1)
	signal.Notify(snapshots, syscall.SIGUSR2)
	go func() {
		for range snapshots {
			runtime.GC() // the heap profile shows live memory as of the last GC
			for _, p := range []string{"heap", "goroutine"} {
				if err := writeProfile(base+"."+p+".pprof", p); err != nil {
					warn("cannot write "+p+" profile", err)
				}
			}
			if err := os.WriteFile(base+".memstats.txt", memStats(), 0o644); err != nil {
				warn("cannot write memory statistics", err)
			}
		}
	}()
	stopSnapshots := func() { signal.Stop(snapshots) }
	f, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		warn("cannot write CPU profile", err)
		return stopSnapshots
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		warn("cannot start CPU profile", err)
		_ = f.Close()
		return stopSnapshots
	}
	return func() {
		stopSnapshots()
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// memStats formats the runtime's memory statistics that explain a resident
// set: live heap, heap kept but unused, goroutine stacks, and the rest.
func memStats() []byte {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Appendf(nil, "goroutines %d\nheap_inuse_mib %.1f\nheap_idle_mib %.1f\nheap_released_mib %.1f\nstack_inuse_mib %.1f\nsys_mib %.1f\nother_mib %.1f\n",
		runtime.NumGoroutine(), mib(m.HeapInuse), mib(m.HeapIdle), mib(m.HeapReleased), mib(m.StackInuse), mib(m.Sys),
		mib(m.MSpanSys+m.MCacheSys+m.BuckHashSys+m.GCSys+m.OtherSys))
}

// writeProfile writes the named runtime profile to path.
func writeProfile(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
