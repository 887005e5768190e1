package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// atClkTck is the auxiliary vector entry holding sysconf(_SC_CLK_TCK)
// (AT_CLKTCK in linux/auxvec.h); x/sys/unix does not name it.
const atClkTck = 17

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ). The
// kernel hands it to every process in its auxiliary vector, which is where
// sysconf(_SC_CLK_TCK) reads it; 100 Hz is the value on every configuration
// in use, and the fallback.
var clockTick = clockTickFromAuxv(auxv())

func auxv() [][2]uintptr {
	v, _ := unix.Auxv()
	return v
}

// clockTickFromAuxv returns the duration of one clock tick given the
// auxiliary vector, or 10 ms when it holds no usable AT_CLKTCK.
func clockTickFromAuxv(v [][2]uintptr) time.Duration {
	for _, kv := range v {
		if kv[0] == atClkTck && kv[1] > 0 && kv[1] <= uintptr(time.Second) {
			return time.Second / time.Duration(kv[1])
		}
	}
	return 10 * time.Millisecond
}

// procStat is what the bench reads from /proc/<pid>/stat.
type procStat struct {
	ppid int
	// cpu is user + system time of the process itself (utime + stime): its
	// children are measured apart, as processes of their own.
	cpu time.Duration
}

// parseProcStat parses the text of /proc/<pid>/stat with tick as the
// clock tick. The command name is in parentheses and may itself contain
// spaces and parentheses, so the fields are counted from the last ')'.
func parseProcStat(s string, tick time.Duration) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime and stime fields 14-15.
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	var ticks int64
	for _, k := range f[11:13] {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil || v < 0 {
			return procStat{}, false
		}
		ticks += v
	}
	return procStat{ppid: ppid, cpu: time.Duration(ticks) * tick}, true
}

// commOf returns the command name of a /proc/<pid>/stat line: what is
// between the first '(' and the last ')'.
func commOf(stat string) string {
	i, j := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return ""
	}
	return stat[i+1 : j]
}

// nameFromCmdline returns the base name of argv[0] in the text of
// /proc/<pid>/cmdline (NUL-separated), or "" when it is empty. The command
// name in stat is cut at 15 bytes, which would make every plugin
// "sluice-plugin-e".
func nameFromCmdline(cmdline []byte) string {
	arg0, _, _ := bytes.Cut(cmdline, []byte{0})
	if len(arg0) == 0 {
		return ""
	}
	return filepath.Base(string(arg0))
}

// gatewayName is the name the report gives the gateway process itself.
const gatewayName = "sluice"

// benchName is the name the report gives the bench process.
const benchName = "bench"

// procInfo is one process of the gateway tree at one moment.
type procInfo struct {
	pid  int
	name string
	stat procStat
}

// gatewayTree returns root and its live descendants (the gateway and its
// plugin processes; with dev_kafka the broker runs inside the gateway).
// Root is named sluice, the others by argv[0]. Nil where /proc is
// unavailable.
func gatewayTree(root int) []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	type entry struct {
		stat procStat
		comm string
	}
	all := map[int]entry{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, ok := parseProcStat(string(b), clockTick); ok {
			all[pid] = entry{st, commOf(string(b))}
		}
	}
	var out []procInfo
	for pid, en := range all {
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = all[p].stat.ppid, hops+1 {
			if p == root {
				name := gatewayName
				if pid != root {
					cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
					if name = nameFromCmdline(cmd); name == "" {
						name = en.comm
					}
				}
				out = append(out, procInfo{pid: pid, name: name, stat: en.stat})
				break
			}
			if _, ok := all[p]; !ok {
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b procInfo) int { return a.pid - b.pid })
	return out
}

// cpuSample is the CPU time used so far by each process, by name:
// processes of the same name are summed.
type cpuSample map[string]time.Duration

// sampleCPU reads the CPU time of every gateway process (none without a
// gateway) and of the bench itself.
func (e *env) sampleCPU() cpuSample {
	s := cpuSample{benchName: selfCPU()}
	if e.gw != nil {
		for _, p := range gatewayTree(e.gw.cmd.Process.Pid) {
			s[p.name] += p.stat.cpu
		}
	}
	return s
}

// sub returns s - before per process. A process absent before started in
// between and counts from zero; one that exited in between is dropped, and
// a negative difference (a restarted plugin of the same name) counts as zero.
func (s cpuSample) sub(before cpuSample) cpuSample {
	d := cpuSample{}
	for name, v := range s {
		d[name] = max(v-before[name], 0)
	}
	return d
}

// add adds d into s.
func (s cpuSample) add(d cpuSample) {
	for name, v := range d {
		s[name] += v
	}
}

// selfCPU returns the bench process's own user + system CPU time; getrusage
// counts in microseconds, finer than the clock ticks of /proc.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processOrder sorts process names as the report lists them: the gateway
// first, its plugins by name, the bench last.
func processOrder(a, b string) int {
	rank := func(s string) int {
		switch s {
		case gatewayName:
			return 0
		case benchName:
			return 2
		}
		return 1
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}
