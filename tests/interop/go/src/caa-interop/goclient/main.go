// goclient: a containerd/ttrpc client that runs named interop scenarios
// against a server registering the test services of package peer.
//
// Usage: goclient [-wait DURATION] <addr> <scenario> [args]
//
//	basic                 Echo of several payload sizes, hypervisor Version
//	errors                Fail with every gRPC code; code and message intact
//	metadata              request metadata arrives intact (multi-value keys)
//	deadline              timeout_nano arrives; expiry gives DEADLINE_EXCEEDED
//	unknown               unknown service / method answers
//	ooo                   responses complete out of order on one connection
//	abandon               close a connection with calls in flight; server stays healthy
//	conns N M             N concurrent connections, M calls each
//	inflight K            K calls in flight on one connection
//	throughput C D        Version round trips over C connections for D seconds
//	drive                 run calls as told on stdin (see scenarioDrive)
//	bench SVC METHOD SIZE C D  calls with a SIZE-byte payload over C connections for D
//	                      seconds (after 0.3 s unmeasured): rate and latency percentiles
//
// Prints "PASS <scenario> ..." and exits 0, or "FAIL <scenario>: why" and exits 1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"caa-interop/peer"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	addr     string
	scenario string
	waitFor  time.Duration
)

func failf(format string, args ...interface{}) {
	fmt.Printf("FAIL %s: %s\n", scenario, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func dial() *ttrpc.Client {
	network, address, err := peer.ParseAddr(addr)
	if err != nil {
		failf("%v", err)
	}
	end := time.Now().Add(waitFor)
	for {
		conn, err := net.Dial(network, address)
		if err == nil {
			return ttrpc.NewClient(conn)
		}
		if time.Now().After(end) {
			failf("dial %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func call(ctx context.Context, c *ttrpc.Client, service, method string, payload []byte) ([]byte, error) {
	var resp peer.Raw
	err := c.Call(ctx, service, method, &peer.Raw{B: payload}, &resp)
	return resp.B, err
}

func mustCall(ctx context.Context, c *ttrpc.Client, method string, payload []byte) []byte {
	out, err := call(ctx, c, peer.TestService, method, payload)
	if err != nil {
		failf("%s(%q): %v", method, payload, err)
	}
	return out
}

func expectStatus(err error, code codes.Code, msg string) {
	st, ok := status.FromError(err)
	if err == nil || !ok {
		failf("want status %v %q, got error %v", code, msg, err)
	}
	if st.Code() != code || st.Message() != msg {
		failf("want status %v %q, got %v %q", code, msg, st.Code(), st.Message())
	}
}

func scenarioBasic() {
	c := dial()
	defer c.Close()
	ctx := context.Background()
	sizes := []int{0, 1, 127, 128, 4096, 65536, 1 << 20}
	for _, n := range sizes {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		if out := mustCall(ctx, c, "Echo", p); !bytes.Equal(out, p) {
			failf("Echo of %d bytes returned %d different bytes", n, len(out))
		}
	}
	out, err := call(ctx, c, peer.HypervisorService, peer.VersionMethod, peer.Version000)
	if err != nil {
		failf("Version: %v", err)
	}
	if !bytes.Equal(out, peer.Version000) {
		failf("Version: got %x", out)
	}
	fmt.Printf("PASS basic echo sizes=%v version=0.0.0\n", sizes)
}

func scenarioErrors() {
	c := dial()
	defer c.Close()
	ctx := context.Background()
	for code := 1; code <= 16; code++ {
		msg := fmt.Sprintf("failure %d: ünïcode ✓, colons: kept", code)
		_, err := call(ctx, c, peer.TestService, "Fail", []byte(fmt.Sprintf("%d:%s", code, msg)))
		expectStatus(err, codes.Code(code), msg)
	}
	long := strings.Repeat("x", 10000)
	_, err := call(ctx, c, peer.TestService, "Fail", []byte("2:"+long))
	expectStatus(err, codes.Unknown, long)
	// The connection keeps working after errors.
	if out := mustCall(ctx, c, "Echo", []byte("still-alive")); string(out) != "still-alive" {
		failf("Echo after errors: %q", out)
	}
	fmt.Println("PASS errors codes=1..16")
}

func scenarioMetadata() {
	c := dial()
	defer c.Close()
	md := ttrpc.MD{}
	md.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	md.Set("k-multi", "first", "second", "third")
	md.Set("x-unicode", "wert ✓ with spaces")
	md.Set("empty", "")
	ctx := ttrpc.WithMetadata(context.Background(), md)
	want := "empty=\n" +
		"k-multi=first\nk-multi=second\nk-multi=third\n" +
		"traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n" +
		"x-unicode=wert ✓ with spaces\n"
	if out := mustCall(ctx, c, "Metadata", nil); string(out) != want {
		failf("metadata echoed as %q, want %q", out, want)
	}
	if out := mustCall(context.Background(), c, "Metadata", nil); string(out) != "" {
		failf("no metadata sent, server saw %q", out)
	}
	fmt.Println("PASS metadata")
}

func scenarioDeadline() {
	c := dial()
	defer c.Close()
	if out := mustCall(context.Background(), c, "Deadline", nil); string(out) != "none" {
		failf("no deadline sent, server saw %q", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	out := mustCall(ctx, c, "Deadline", nil)
	cancel()
	ms, err := strconv.Atoi(string(out))
	if err != nil || ms <= 3000 || ms > 5000 {
		failf("5 s deadline arrived as %q ms", out)
	}
	arrived := string(out)

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	_, err = call(ctx, c, peer.TestService, "Expire", nil)
	elapsed := time.Since(start)
	cancel()
	// Either our own context expires first or the server's DEADLINE_EXCEEDED
	// arrives first; both are the deadline firing.
	if st, ok := status.FromError(err); !(errors.Is(err, context.DeadlineExceeded) ||
		(ok && err != nil && st.Code() == codes.DeadlineExceeded)) {
		failf("Expire with 200 ms deadline: %v", err)
	}
	if elapsed < 190*time.Millisecond || elapsed > 3*time.Second {
		failf("Expire returned after %v", elapsed)
	}
	// A late answer for the expired stream must not disturb later calls.
	mustCall(context.Background(), c, "Sleep", []byte("300:after-expire"))
	if out := mustCall(context.Background(), c, "Echo", []byte("x")); string(out) != "x" {
		failf("Echo after expiry: %q", out)
	}
	fmt.Printf("PASS deadline arrived=%sms expired-after=%v\n", arrived, elapsed.Round(time.Millisecond))
}

func scenarioUnknown() {
	c := dial()
	defer c.Close()
	ctx := context.Background()
	_, err := call(ctx, c, "caa.interop.Nope", "Echo", []byte("x"))
	expectStatus(err, codes.Unimplemented, "service caa.interop.Nope")
	_, err = call(ctx, c, peer.TestService, "Nope", []byte("x"))
	expectStatus(err, codes.Unimplemented, "method Nope")
	if out := mustCall(ctx, c, "Echo", []byte("y")); string(out) != "y" {
		failf("Echo after unknown: %q", out)
	}
	fmt.Println("PASS unknown")
}

func scenarioOutOfOrder() {
	c := dial()
	defer c.Close()
	tags := []string{"800:a", "400:b", "0:c"}
	done := make(chan string, len(tags))
	for _, t := range tags {
		go func(t string) {
			out := mustCall(context.Background(), c, "Sleep", []byte(t))
			if string(out) != t {
				failf("Sleep(%s) answered %q", t, out)
			}
			done <- t
		}(t)
		time.Sleep(20 * time.Millisecond) // keep the send order a, b, c
	}
	var order []string
	for range tags {
		order = append(order, <-done)
	}
	if strings.Join(order, ",") != "0:c,400:b,800:a" {
		failf("completion order %v, want c, b, a", order)
	}
	fmt.Println("PASS ooo order=c,b,a")
}

func scenarioAbandon() {
	c := dial()
	const n = 10
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			_, err := call(context.Background(), c, peer.TestService, "Sleep", []byte(fmt.Sprintf("300:abandon-%d", i)))
			errs <- err
		}(i)
	}
	time.Sleep(50 * time.Millisecond) // let the requests reach the server
	c.Close()
	for i := 0; i < n; i++ {
		if err := <-errs; err == nil {
			failf("call %d succeeded on a closed client", i)
		}
	}
	// The server finished (or dropped) the abandoned calls without harm.
	c = dial()
	defer c.Close()
	ctx := context.Background()
	if out := mustCall(ctx, c, "Sleep", []byte("400:after-abandon")); string(out) != "400:after-abandon" {
		failf("Sleep after abandon: %q", out)
	}
	if out := mustCall(ctx, c, "Echo", []byte("z")); string(out) != "z" {
		failf("Echo after abandon: %q", out)
	}
	fmt.Printf("PASS abandon calls=%d\n", n)
}

func scenarioConns(n, m int) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := dial()
			defer c.Close()
			for j := 0; j < m; j++ {
				p := []byte(fmt.Sprintf("conn-%d-call-%d", i, j))
				if out := mustCall(context.Background(), c, "Echo", p); !bytes.Equal(out, p) {
					failf("conn %d call %d: got %q", i, j, out)
				}
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("PASS conns n=%d m=%d in %v\n", n, m, time.Since(start).Round(time.Millisecond))
}

func scenarioInflight(k int) {
	c := dial()
	defer c.Close()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Different sleeps make the server answer out of order.
			p := []byte(fmt.Sprintf("%d:inflight-%d", (i*7)%50, i))
			if out := mustCall(context.Background(), c, "Sleep", p); !bytes.Equal(out, p) {
				failf("call %d: got %q", i, out)
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("PASS inflight k=%d in %v\n", k, time.Since(start).Round(time.Millisecond))
}

func scenarioThroughput(conns int, d time.Duration) {
	var total int64
	var wg sync.WaitGroup
	clients := make([]*ttrpc.Client, conns)
	for i := range clients {
		clients[i] = dial()
	}
	start := time.Now()
	end := start.Add(d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(c *ttrpc.Client) {
			defer wg.Done()
			var n int64
			for time.Now().Before(end) {
				out, err := call(context.Background(), c, peer.HypervisorService, peer.VersionMethod, peer.Version000)
				if err != nil || !bytes.Equal(out, peer.Version000) {
					failf("Version: %x %v", out, err)
				}
				n++
			}
			atomic.AddInt64(&total, n)
		}(clients[i])
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, c := range clients {
		c.Close()
	}
	fmt.Printf("PASS throughput conns=%d seconds=%.3f calls=%d rate=%.0f\n", conns, secs, total, float64(total)/secs)
}

// FillPayload is the "fill:N" payload of scenarioDrive: byte i = i*131+7.
func fillPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*131 + 7)
	}
	return p
}

// scenarioDrive reads commands from stdin, one per line, so a test script
// can steer calls around faults it injects:
//
//	conn N                                  use connection N (dialled on first use)
//	close N                                 close connection N
//	call ID SERVICE METHOD TIMEOUT_MS DATA  start a call on the current connection;
//	                                        DATA: hex, "-" (empty) or "fill:N"; TIMEOUT_MS 0: no deadline
//	wait                                    wait for every started call, then print "IDLE"
//	sync TAG                                print "SYNC TAG" (orders output)
//
// Each finished call prints one line:
//
//	DONE ID CODE ELAPSED_MS LEN DATA MESSAGE
//
// CODE is the gRPC code (0 OK, -1 for a non-status error), DATA the response
// payload in hex ("-" when empty, "sha256:<hex>" above 64 KiB), MESSAGE the
// status or error text quoted by Go's %q. End of input waits for all calls.
func scenarioDrive() {
	conns := map[int]*ttrpc.Client{}
	cur := 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	emit := func(format string, args ...interface{}) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 32<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "conn", "close":
			if len(f) != 2 {
				failf("bad line %q", sc.Text())
			}
			n, err := strconv.Atoi(f[1])
			if err != nil {
				failf("bad connection number %q", f[1])
			}
			if f[0] == "conn" {
				if conns[n] == nil {
					conns[n] = dial()
				}
				cur = n
			} else if conns[n] != nil {
				conns[n].Close()
				delete(conns, n)
			}
		case "call":
			if len(f) != 6 {
				failf("bad line %q", sc.Text())
			}
			id, service, method := f[1], f[2], f[3]
			ms, err := strconv.Atoi(f[4])
			if err != nil {
				failf("bad timeout %q", f[4])
			}
			var payload []byte
			switch {
			case f[5] == "-":
			case strings.HasPrefix(f[5], "fill:"):
				n, err := strconv.Atoi(strings.TrimPrefix(f[5], "fill:"))
				if err != nil {
					failf("bad fill %q", f[5])
				}
				payload = fillPayload(n)
			default:
				if payload, err = hex.DecodeString(f[5]); err != nil {
					failf("bad hex for call %s", id)
				}
			}
			if conns[cur] == nil {
				conns[cur] = dial()
			}
			c := conns[cur]
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if ms > 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
				}
				start := time.Now()
				out, err := call(ctx, c, service, method, payload)
				elapsed := time.Since(start).Milliseconds()
				cancel()
				code, msg := 0, ""
				if err != nil {
					if st, ok := status.FromError(err); ok {
						code, msg = int(st.Code()), st.Message()
					} else {
						code, msg = -1, err.Error()
					}
				}
				data := "-"
				if len(out) > 65536 {
					sum := sha256.Sum256(out)
					data = "sha256:" + hex.EncodeToString(sum[:])
				} else if len(out) > 0 {
					data = hex.EncodeToString(out)
				}
				emit("DONE %s %d %d %d %s %q", id, code, elapsed, len(out), data, msg)
			}()
		case "wait":
			wg.Wait()
			emit("IDLE")
		case "sync":
			emit("SYNC %s", strings.Join(f[1:], " "))
		default:
			failf("unknown command %q", f[0])
		}
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
}

func scenarioBench(service, method string, size, conns int, d time.Duration) {
	payload := fillPayload(size)
	clients := make([]*ttrpc.Client, conns)
	for i := range clients {
		clients[i] = dial()
	}
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	warm := time.Now().Add(300 * time.Millisecond)
	var start, end time.Time
	start = warm
	end = warm.Add(d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				t := time.Now()
				if t.After(end) {
					return
				}
				out, err := call(context.Background(), clients[i], service, method, payload)
				if err != nil || (size > 0 && len(out) != size) {
					failf("%s/%s: %d bytes back, %v", service, method, len(out), err)
				}
				if t.After(warm) {
					lat[i] = append(lat[i], time.Since(t))
				}
			}
		}(i)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		failf("no calls completed")
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	secs := end.Sub(start).Seconds()
	pct := func(p float64) int64 { return all[int(float64(len(all)-1)*p)].Microseconds() }
	for _, c := range clients {
		c.Close()
	}
	fmt.Printf("PASS bench calls=%d seconds=%.3f rate=%.0f p50_us=%d p99_us=%d max_us=%d\n",
		len(all), secs, float64(len(all))/secs, pct(0.50), pct(0.99), all[len(all)-1].Microseconds())
}

func intArg(i int, def int) int {
	if flag.NArg() <= i {
		return def
	}
	v, err := strconv.Atoi(flag.Arg(i))
	if err != nil || v <= 0 {
		failf("bad number %q", flag.Arg(i))
	}
	return v
}

func main() {
	flag.DurationVar(&waitFor, "wait", 0, "keep retrying the first dial this long")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: goclient [-wait D] <unix:/path|tcp:host:port> <scenario> [args]")
		os.Exit(2)
	}
	addr, scenario = flag.Arg(0), flag.Arg(1)
	switch scenario {
	case "basic":
		scenarioBasic()
	case "errors":
		scenarioErrors()
	case "metadata":
		scenarioMetadata()
	case "deadline":
		scenarioDeadline()
	case "unknown":
		scenarioUnknown()
	case "ooo":
		scenarioOutOfOrder()
	case "abandon":
		scenarioAbandon()
	case "conns":
		scenarioConns(intArg(2, 100), intArg(3, 10))
	case "inflight":
		scenarioInflight(intArg(2, 1000))
	case "throughput":
		scenarioThroughput(intArg(2, 1), time.Duration(intArg(3, 5))*time.Second)
	case "drive":
		scenarioDrive()
	case "bench":
		if flag.NArg() != 7 {
			failf("usage: bench SERVICE METHOD SIZE CONNS SECONDS")
		}
		size, err := strconv.Atoi(flag.Arg(4))
		if err != nil || size < 0 {
			failf("bad size %q", flag.Arg(4))
		}
		scenarioBench(flag.Arg(2), flag.Arg(3), size, intArg(5, 1), time.Duration(intArg(6, 5))*time.Second)
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", scenario)
		os.Exit(2)
	}
}
