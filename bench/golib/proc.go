package golib

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClkTck is sysconf(_SC_CLK_TCK) on Linux x86-64: /proc's CPU times are in these ticks.
const ClkTck = 100.0

// ProcStatusKiB reads a kB field of /proc/<pid>/status (key with its colon, e.g. "VmRSS:"), for
// the memory of a server under load; false when pid <= 0 or the field is missing.
func ProcStatusKiB(pid int, key string) (int64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return v, true
				}
			}
		}
	}
	return 0, false
}

// ProcCPUSeconds is utime+stime of a process (pid <= 0: this one) in seconds, for the CPU share
// of the server and of the client over a phase.
func ProcCPUSeconds(pid int) (float64, bool) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := string(data)
	j := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if j < 0 || j+2 > len(s) {
		return 0, false
	}
	f := strings.Fields(s[j+2:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / ClkTck, true
}

// MachineJiffies is the first line of /proc/stat (all CPUs): user, nice, system, idle, iowait,
// irq, softirq, steal, guest, guest_nice in ticks (0 where missing), for whole-machine busy time.
func MachineJiffies() ([10]float64, bool) {
	var j [10]float64
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return j, false
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	for i := range j {
		if i+1 < len(f) {
			j[i], _ = strconv.ParseFloat(f[i+1], 64)
		}
	}
	return j, true
}
