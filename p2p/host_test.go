package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/config"
	corecm "github.com/libp2p/go-libp2p/core/connmgr"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/fx"
)

// newOptions are the options newHost gave libp2p.New before it built the
// libp2p config itself, kept as the specification of libp2pConfig: the host
// must be what libp2p.New(newOptions(...)...) would make.
func newOptions(cfg HostConfig, hooks hostHooks, rm network.ResourceManager, cm corecm.ConnManager) []libp2p.Option {
	mux := *yamux.DefaultTransport
	mux.MaxStreamWindowSize = streamWindow
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrs(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, &mux),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableRelay(),
		libp2p.DisableMetrics(),
	}
	var hp []holepunch.Option
	if hooks.holePunch != nil {
		hp = append(hp, holepunch.WithMetricsAndEventTracer(hooks.holePunch, hooks.holePunch))
	}
	opts = append(opts, libp2p.EnableHolePunching(hp...))
	if hooks.relayCandidates != nil {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(hooks.relayCandidates,
			autorelay.WithNumRelays(relaysWanted),
			autorelay.WithMinCandidates(1),
			autorelay.WithBootDelay(0),
			autorelay.WithMaxCandidateAge(relayCandidateAge),
			autorelay.WithBackoff(relayBackoff),
		))
	}
	if hooks.gate != nil {
		opts = append(opts, libp2p.ConnectionGater(hooks.gate))
	}
	if hooks.advertised != nil {
		opts = append(opts, libp2p.AddrsFactory(hooks.advertised))
	}
	if !cfg.NoPortMapping && !cfg.loopbackOnly() {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts
}

// TestLibp2pConfigMatchesNew: the config libp2pConfig writes out is, field
// by field, the one libp2p.New builds from newOptions and its fallback
// defaults, for a plug with every hook and port mapping and for one on
// loopback with none. A field go-libp2p starts to default (after an
// upgrade) shows up here as a difference to decide on.
func TestLibp2pConfigMatchesNew(t *testing.T) {
	key, _, err := p2pcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{}
	allHooks := hostHooks{
		relayCandidates: n.relayCandidates,
		holePunch:       &links{},
		advertised:      n.advertised,
		gate:            &transportGate{},
	}
	for _, tc := range []struct {
		name  string
		cfg   HostConfig
		hooks hostHooks
	}{
		{"every hook", HostConfig{Key: key, ListenAddrs: DefaultListenAddrs()}, allHooks},
		{"no port mapping", HostConfig{Key: key, ListenAddrs: DefaultListenAddrs(), NoPortMapping: true}, allHooks},
		{"loopback, no hooks", HostConfig{Key: key, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}}, hostHooks{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := &network.NullResourceManager{}
			cm := &corecm.NullConnMgr{}
			ps, err := pstoremem.NewPeerstore()
			if err != nil {
				t.Fatal(err)
			}
			defer closeOrFail(t, "our peerstore", ps.Close)
			got := libp2pConfig(tc.cfg, tc.hooks, rm, cm, ps)

			var want config.Config
			if err := want.Apply(append(newOptions(tc.cfg, tc.hooks, rm, cm), libp2p.FallbackDefaults)...); err != nil {
				t.Fatalf("apply the options: %v", err)
			}
			defer closeOrFail(t, "the fallback peerstore", want.Peerstore.Close)

			gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(&want).Elem()
			for i := range wv.NumField() {
				f := wv.Type().Field(i)
				g, w := gv.Field(i), wv.Field(i)
				var same bool
				switch f.Name {
				case "Peerstore":
					// Each way makes its own, empty: the kind is what counts.
					same = reflect.TypeOf(got.Peerstore) == reflect.TypeOf(want.Peerstore)
				default:
					same = sameConfigValue(g, w)
				}
				if !same {
					t.Errorf("config field %s = %v, libp2p.New would have %v", f.Name, describe(g), describe(w))
				}
			}
		})
	}
}

// sameConfigValue reports whether two values of a config.Config field are
// the same for the host that config builds: functions by their code, or,
// for the closures that options such as autorelay.WithBackoff return, by
// the function that made them (what they capture cannot be read, and comes
// from the same constants both ways); fx options by what they provide (fx
// describes each with its constructor's name and annotations); everything
// else deeply.
func sameConfigValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if o, ok := a.Interface().(fx.Option); ok && a.Kind() != reflect.Func {
		return fmt.Sprint(o) == fmt.Sprint(b.Interface())
	}
	switch a.Kind() {
	case reflect.Func:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Pointer() == b.Pointer() {
			return true
		}
		ma, oka := closureMaker(a)
		mb, okb := closureMaker(b)
		return oka && okb && ma == mb
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameConfigValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameConfigValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				return reflect.DeepEqual(a.Interface(), b.Interface())
			}
			if !sameConfigValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// closureMaker names the function that made the closure f: "WithBackoff"
// for autorelay.WithBackoff(d), whether the compiler inlined WithBackoff
// (the closure is then named after its caller, as in
// "p2p.libp2pConfig.WithBackoff.func7") or not
// ("autorelay.WithBackoff.func1"). ok is false when f is not a closure.
func closureMaker(f reflect.Value) (maker string, ok bool) {
	name := runtime.FuncForPC(f.Pointer()).Name()
	i := strings.LastIndex(name, ".func")
	if i < 0 {
		return "", false
	}
	name = name[:i]
	return name[strings.LastIndex(name, ".")+1:], true
}

// describe prints a config value for a failure message.
func describe(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = describe(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if v.Kind() == reflect.Func && !v.IsNil() {
		return runtime.FuncForPC(v.Pointer()).Name()
	}
	return fmt.Sprintf("%+v", v.Interface())
}

func closeOrFail(t *testing.T, what string, close func() error) {
	t.Helper()
	if err := close(); err != nil {
		t.Errorf("close %s: %v", what, err)
	}
}

// TestServiceLimitsMatchLibp2p: setServiceLimits, our copy, adds exactly
// the limits of go-libp2p's own libp2p.SetDefaultServiceLimits. When a
// go-libp2p upgrade changes those, copy the new limits.go into limits.go.
func TestServiceLimitsMatchLibp2p(t *testing.T) {
	var got, want rcmgr.ScalingLimitConfig
	setServiceLimits(&got)
	libp2p.SetDefaultServiceLimits(&want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("setServiceLimits adds\n%+v\nlibp2p.SetDefaultServiceLimits adds\n%+v", got, want)
	}
	// And scaled, as newHost uses them.
	if g, w := got.Scale(DefaultMemoryLimit, DefaultFDLimit), want.Scale(DefaultMemoryLimit, DefaultFDLimit); !reflect.DeepEqual(g, w) {
		t.Fatalf("scaled limits differ:\n%+v\n%+v", g, w)
	}
}

// TestNoRootLibp2p keeps go-libp2p's root package out of the plug binary.
// Importing it links the transports its DefaultTransports names whether
// they are used or not: WebSocket, WebTransport and WebRTC with pion, about
// 4 MB of a binary that must fit small ARM boards. The plug builds its host
// from go-libp2p/config instead (libp2pConfig). Tests may use libp2p.New;
// cmd/plug, and all it imports, may not. go-libp2p/config itself imports
// the WebRTC transport package for one type, so that one is allowed.
func TestNoRootLibp2p(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list what cmd/plug imports: %v", err)
	}
	const plug = "github.com/plug-net/plug/cmd/plug"
	out, err := exec.CommandContext(t.Context(), gocmd, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, plug).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("list the packages %s imports: %v", plug, err)
	}
	banned := map[string]string{
		"github.com/libp2p/go-libp2p":                            "go-libp2p's root package (libp2p.New and its options); build the host in libp2pConfig",
		"github.com/libp2p/go-libp2p/p2p/transport/websocket":    "the WebSocket transport, which the plug does not use",
		"github.com/libp2p/go-libp2p/p2p/transport/webtransport": "the WebTransport transport, which the plug does not use",
	}
	listed, importers := map[string]bool{}, map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		listed[fields[0]] = true
		for _, imp := range fields[1:] {
			importers[imp] = append(importers[imp], fields[0])
		}
	}
	for pkg, why := range banned {
		if listed[pkg] {
			t.Errorf("%s links %s (%s), imported by %s", plug, pkg, why, strings.Join(importers[pkg], ", "))
		}
	}
	if !listed[plug] {
		t.Fatalf("go list -deps %s did not list it: is the import path still right?", plug)
	}
}
