// Package peer holds what the Go test peers share: the raw-bytes message
// type, the test service contract (names and payload formats, mirrored by
// tests/interop/c-peer.c) and address parsing.
package peer

import (
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strings"
)

// TestService is the service both test servers register.
//
// Methods (payloads are plain text so both peers can build them by hand):
//
//	Echo      replies with the request payload.
//	Fail      payload "<code>:<message>": replies with that gRPC status.
//	Sleep     payload "<ms>:<tag>": waits ms milliseconds, then echoes.
//	Metadata  replies with the request metadata, one "key=value\n" line per
//	          entry, sorted by key (values of one key in arrival order).
//	Deadline  replies with the remaining deadline in ms, or "none".
//	Expire    waits for the request deadline, then fails DEADLINE_EXCEEDED
//	          (INVALID_ARGUMENT "no deadline" when there is none).
const TestService = "caa.interop.Test"

// HypervisorService / VersionMethod: the remote-hypervisor Version call.
const (
	HypervisorService = "hypervisor.Hypervisor"
	VersionMethod     = "Version"
)

// VersionResponse{version: "0.0.0"} and VersionRequest{version: "0.0.0"}
// encode to the same bytes: field 1, length 5, "0.0.0".
var Version000 = []byte{0x0a, 0x05, '0', '.', '0', '.', '0'}

// Raw is a message that gogo/protobuf marshals verbatim, so the peers can
// send and receive arbitrary payload bytes without generated code.
type Raw struct{ B []byte }

func (r *Raw) Reset()                   { r.B = nil }
func (r *Raw) String() string           { return hex.EncodeToString(r.B) }
func (r *Raw) ProtoMessage()            {}
func (r *Raw) Marshal() ([]byte, error) { return r.B, nil }
func (r *Raw) Unmarshal(p []byte) error { r.B = append([]byte(nil), p...); return nil }

// ParseAddr splits "unix:/path" or "tcp:host:port" into a network and address.
func ParseAddr(addr string) (string, string, error) {
	switch {
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:"), nil
	case strings.HasPrefix(addr, "tcp:"):
		return "tcp", strings.TrimPrefix(addr, "tcp:"), nil
	}
	return "", "", fmt.Errorf("address %q: want unix:/path or tcp:host:port", addr)
}

// FormatAddr is the inverse of ParseAddr for a listener address.
func FormatAddr(a net.Addr) string {
	return a.Network() + ":" + a.String()
}

// FormatMetadata renders metadata the way the Metadata method replies.
func FormatMetadata(md map[string][]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range md[k] {
			b.WriteString(k + "=" + v + "\n")
		}
	}
	return b.String()
}

// VersionRequestField1 returns field 1 (version) of a VersionRequest, decoded
// by hand: the servers do the same decoding work as a typed server would.
func VersionRequestField1(p []byte) (string, error) {
	var version string
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
		case 2:
			l, n := uvarint(p[i:])
			if n <= 0 || uint64(len(p)-i-n) < l {
				return "", fmt.Errorf("bad length")
			}
			i += n
			if tag>>3 == 1 {
				version = string(p[i : i+int(l)])
			}
			i += int(l)
		default:
			return "", fmt.Errorf("unexpected wire type %d", tag&7)
		}
	}
	return version, nil
}

func uvarint(p []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(p) && i < 10; i++ {
		v |= uint64(p[i]&0x7f) << (7 * uint(i))
		if p[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}
