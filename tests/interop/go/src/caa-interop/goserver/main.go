// goserver: a containerd/ttrpc server registering the interop test services
// (see package peer) and hypervisor.Hypervisor/Version.
//
// Usage: goserver [-agent] [-record FILE] unix:/path | tcp:127.0.0.1:0
// Prints "LISTENING <addr>" once it accepts connections; exits on SIGTERM/SIGINT.
//
// -agent also registers the kata-agent services (stand-in for the agent
// behind agent-protocol-forwarder): every grpc.AgentService method echoes
// its payload, except WaitProcess/ReadStdout/ReadStderr for a container id
// starting with "block", which wait for a SignalProcess on that container
// id (WaitProcess then answers status 137, the reads EOF); grpc.Health/Check
// answers SERVING, grpc.Health/Version a fixed version. -record appends
// "<service> <method> <payload hex>" per request to FILE.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"caa-interop/peer"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type handler func(ctx context.Context, in []byte) ([]byte, error)

func method(h handler) ttrpc.Method {
	return func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
		var in peer.Raw
		if err := unmarshal(&in); err != nil {
			return nil, err
		}
		out, err := h(ctx, in.B)
		if err != nil {
			return nil, err
		}
		return &peer.Raw{B: out}, nil
	}
}

func echo(ctx context.Context, in []byte) ([]byte, error) {
	return in, nil
}

func fail(ctx context.Context, in []byte) ([]byte, error) {
	parts := strings.SplitN(string(in), ":", 2)
	code, err := strconv.Atoi(parts[0])
	if err != nil || len(parts) != 2 {
		return nil, status.Errorf(codes.InvalidArgument, "bad Fail payload %q", in)
	}
	return nil, status.Error(codes.Code(code), parts[1])
}

func sleep(ctx context.Context, in []byte) ([]byte, error) {
	parts := strings.SplitN(string(in), ":", 2)
	ms, err := strconv.Atoi(parts[0])
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad Sleep payload %q", in)
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return in, nil
}

func metadata(ctx context.Context, in []byte) ([]byte, error) {
	md, _ := ttrpc.GetMetadata(ctx)
	return []byte(peer.FormatMetadata(md)), nil
}

func deadline(ctx context.Context, in []byte) ([]byte, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return []byte("none"), nil
	}
	return []byte(strconv.FormatInt(time.Until(dl).Milliseconds(), 10)), nil
}

func expire(ctx context.Context, in []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, status.Error(codes.InvalidArgument, "no deadline")
	}
	<-ctx.Done()
	// ttrpc maps context.DeadlineExceeded to DEADLINE_EXCEEDED.
	return nil, ctx.Err()
}

func version(ctx context.Context, in []byte) ([]byte, error) {
	if _, err := peer.VersionRequestField1(in); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "VersionRequest: %v", err)
	}
	return peer.Version000, nil
}

// agentMethod records the request and answers it as described above.
func agentMethod(rec *peer.Recorder, blk *peer.Blocker, service, name string) ttrpc.Method {
	return method(func(ctx context.Context, in []byte) ([]byte, error) {
		rec.Record(service, name, in)
		switch name {
		case "Check":
			return peer.HealthServing, nil
		case "Version":
			return peer.HealthVersion, nil
		case "SignalProcess":
			if id, err := peer.StringField(in, 1); err == nil {
				blk.Release(id)
			}
		case "WaitProcess", "ReadStdout", "ReadStderr":
			id, err := peer.StringField(in, 1)
			if err == nil && strings.HasPrefix(id, "block") {
				select {
				case <-blk.Wait(id):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				if name == "WaitProcess" {
					return peer.WaitStatusKilled, nil
				}
				return nil, nil
			}
		}
		return in, nil
	})
}

func registerAgent(s *ttrpc.Server, rec *peer.Recorder) {
	blk := peer.NewBlocker()
	agent := map[string]ttrpc.Method{}
	for _, m := range peer.AgentMethods {
		agent[m] = agentMethod(rec, blk, peer.AgentService, m)
	}
	s.Register(peer.AgentService, agent)
	s.Register(peer.HealthService, map[string]ttrpc.Method{
		"Check":   agentMethod(rec, blk, peer.HealthService, "Check"),
		"Version": agentMethod(rec, blk, peer.HealthService, "Version"),
	})
}

func main() {
	agentMode := flag.Bool("agent", false, "also serve the kata-agent services")
	recordPath := flag.String("record", "", "append every agent request to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: goserver [-agent] [-record FILE] unix:/path | tcp:host:port")
		os.Exit(2)
	}
	var rec *peer.Recorder
	if *recordPath != "" {
		r, err := peer.NewRecorder(*recordPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "record:", err)
			os.Exit(1)
		}
		rec = r
	}
	network, address, err := peer.ParseAddr(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if network == "unix" {
		os.Remove(address)
	}
	l, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}

	s, err := ttrpc.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
	s.Register(peer.TestService, map[string]ttrpc.Method{
		"Echo":     method(echo),
		"Fail":     method(fail),
		"Sleep":    method(sleep),
		"Metadata": method(metadata),
		"Deadline": method(deadline),
		"Expire":   method(expire),
	})
	s.Register(peer.HypervisorService, map[string]ttrpc.Method{
		peer.VersionMethod: method(version),
	})
	if *agentMode {
		registerAgent(s, rec)
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigc
		s.Close() // closes the listener, which removes the unix socket file
	}()

	fmt.Printf("LISTENING %s\n", peer.FormatAddr(l.Addr()))
	os.Stdout.Sync()
	if err := s.Serve(context.Background(), l); err != nil && err != ttrpc.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
