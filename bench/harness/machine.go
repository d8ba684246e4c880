package harness

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine describes where and how a run happened.
type Machine struct {
	// Date is when the run started.
	Date time.Time `json:"date"`
	// Command is the command line that produced the run.
	Command string `json:"command"`
	// GoVersion, OS, Arch, GOMAXPROCS and NumCPU describe the Go runtime.
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	// CPU is the first "model name" of /proc/cpuinfo, empty where
	// unreadable.
	CPU string `json:"cpu"`
	// TempDir is where the stores live.
	TempDir string `json:"temp_dir"`
	// CPUPressure is Linux's CPU pressure ("some avg10", percent) when the
	// run started, or -1.
	CPUPressure float64 `json:"cpu_pressure_avg10"`
}

// ReadMachine describes this machine now; command is the command line to
// record.
func ReadMachine(command string) Machine {
	return Machine{
		Date:        time.Now(),
		Command:     command,
		GoVersion:   runtime.Version(),
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		NumCPU:      runtime.NumCPU(),
		CPU:         cpuModel(),
		TempDir:     os.TempDir(),
		CPUPressure: cpuPressure(),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
