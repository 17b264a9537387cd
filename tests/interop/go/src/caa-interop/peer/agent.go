package peer

import (
	"encoding/hex"
	"fmt"
	"os"
	"sync"
)

// Kata agent services (agent.proto, health.proto) as the agent-mode
// goserver registers them: every request is recorded, most are echoed.
const (
	AgentService  = "grpc.AgentService"
	HealthService = "grpc.Health"
)

// AgentMethods are the 42 grpc.AgentService methods of Kata's agent.proto.
var AgentMethods = []string{
	"CreateContainer", "StartContainer", "RemoveContainer", "ExecProcess", "SignalProcess",
	"WaitProcess", "UpdateContainer", "UpdateEphemeralMounts", "StatsContainer", "PauseContainer",
	"ResumeContainer", "RemoveStaleVirtiofsShareMounts", "GetDiagnosticData", "WriteStdin",
	"ReadStdout", "ReadStderr", "CloseStdin", "TtyWinResize", "UpdateInterface", "UpdateRoutes",
	"ListInterfaces", "ListRoutes", "AddARPNeighbors", "GetIPTables", "SetIPTables", "GetMetrics",
	"MemAgentMemcgSet", "MemAgentCompactSet", "CreateSandbox", "DestroySandbox", "OnlineCPUMem",
	"ReseedRandomDev", "GetGuestDetails", "MemHotplugByProbe", "SetGuestDateTime", "CopyFile",
	"GetOOMEvent", "AddSwap", "AddSwapPath", "GetVolumeStats", "ResizeVolume", "SetPolicy",
}

// HealthServing is HealthCheckResponse{status: SERVING}.
var HealthServing = []byte{0x08, 0x01}

// HealthVersion is VersionCheckResponse{grpc_version: "caa-test", agent_version: "test"}.
var HealthVersion = append(append([]byte{0x0a, 0x08}, "caa-test"...), append([]byte{0x12, 0x04}, "test"...)...)

// WaitStatusKilled is WaitProcessResponse{status: 137}.
var WaitStatusKilled = []byte{0x08, 0x89, 0x01}

// Recorder appends one line per request to a file:
// "<service> <method> <payload hex or ->\n". Lines are whole even with
// concurrent handlers.
type Recorder struct {
	mu sync.Mutex
	f  *os.File
}

func NewRecorder(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Recorder{f: f}, nil
}

func (r *Recorder) Record(service, method string, payload []byte) {
	if r == nil {
		return
	}
	p := "-"
	if len(payload) > 0 {
		p = hex.EncodeToString(payload)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.f, "%s %s %s\n", service, method, p)
}

// Blocker holds calls keyed by container id until Release (SignalProcess).
type Blocker struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func NewBlocker() *Blocker {
	return &Blocker{waiters: map[string][]chan struct{}{}}
}

func (b *Blocker) Wait(id string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan struct{})
	b.waiters[id] = append(b.waiters[id], ch)
	return ch
}

func (b *Blocker) Release(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.waiters[id])
	for _, ch := range b.waiters[id] {
		close(ch)
	}
	delete(b.waiters, id)
	return n
}

// StringField returns string field num of a protobuf message, decoded by
// hand ("" when absent).
func StringField(p []byte, num uint64) (string, error) {
	var out string
	for i := 0; i < len(p); {
		tag, n := uvarint(p[i:])
		if n <= 0 {
			return "", fmt.Errorf("bad tag")
		}
		i += n
		switch tag & 7 {
		case 0:
			_, n = uvarint(p[i:])
			if n <= 0 {
				return "", fmt.Errorf("bad varint")
			}
			i += n
		case 1:
			i += 8
		case 5:
			i += 4
		case 2:
			l, n := uvarint(p[i:])
			if n <= 0 || uint64(len(p)-i-n) < l {
				return "", fmt.Errorf("bad length")
			}
			i += n
			if tag>>3 == num {
				out = string(p[i : i+int(l)])
			}
			i += int(l)
		default:
			return "", fmt.Errorf("unexpected wire type %d", tag&7)
		}
		if i > len(p) {
			return "", fmt.Errorf("truncated")
		}
	}
	return out, nil
}
