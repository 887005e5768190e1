package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux configuration in use).
const clockTick = 10 * time.Millisecond

// procStat is what the bench reads from /proc/<pid>/stat.
type procStat struct {
	ppid int
	// cpu is user + system time of the process and of its waited-for
	// children (a plugin that was restarted counts once it is reaped).
	cpu time.Duration
}

// parseProcStat parses the text of /proc/<pid>/stat. The command name is in
// parentheses and may itself contain spaces and parentheses, so the fields
// are counted from the last ')'.
func parseProcStat(s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17.
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	var ticks int64
	for _, k := range f[11:15] {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return procStat{}, false
		}
		ticks += v
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * clockTick}, true
}

// treeCPU returns the CPU time used so far by root and its live
// descendants (the gateway, its plugins and, with dev_kafka, the broker
// inside it). Zero where /proc is unavailable.
func treeCPU(root int) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	stats := map[int]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, ok := parseProcStat(string(b)); ok {
			stats[pid] = st
		}
	}
	var total time.Duration
	for pid, st := range stats {
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = stats[p].ppid, hops+1 {
			if p == root {
				total += st.cpu
				break
			}
			if _, ok := stats[p]; !ok {
				break
			}
		}
	}
	return total
}

// selfCPU returns the bench process's own user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
