package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/durable"
	"github.com/plug-net/plug/store/kv"
)

// Defaults of "plug up".
const (
	defaultAPI   = "127.0.0.1:7777"
	defaultGrace = 72 * time.Hour
	// memoryLimit is the soft limit of the Go heap: the daemon gives memory
	// back before it grows past it (a plug may live on a 512 MiB board).
	memoryLimit = 96 << 20
	// eventsKept bounds the event log.
	eventsKept = 50_000
)

// upConfig is the command line of "plug up".
type upConfig struct {
	dir         dataDir
	api         string
	allowRemote bool
	listen      []ma.Multiaddr
	bootstrap   []peer.AddrInfo // nil: the public IPFS DHT
	noBootstrap bool
	// publicRanges are address ranges treated as public (--public-ranges).
	publicRanges []netip.Prefix
	noPortMap    bool
	name         string
	grace        time.Duration
	every        time.Duration
	settle       time.Duration
	verbose      bool
}

func cmdUp(ctx context.Context, std stdio, args []string) error {
	f := newFlags("up", std)
	var listen, bootstrap multiFlag
	cfg := upConfig{}
	f.StringVar(&cfg.api, "api", defaultAPI, "`HOST:PORT` of the web UI and JSON API (port 0 picks a free one)")
	f.BoolVar(&cfg.allowRemote, "allow-remote-ui", false, "allow --api on a non-loopback address (the UI is then reachable from the network)")
	f.Var(&listen, "listen", "libp2p listen `MULTIADDR` (repeatable; default TCP and QUIC on port 7778)")
	f.Var(&bootstrap, "bootstrap", "DHT bootstrap peer `MULTIADDR` (repeatable), or \"none\" (default: the public IPFS DHT)")
	f.StringVar(&cfg.name, "name", "", "this plug's `NAME`, shown to friends (default: the host name)")
	ranges := f.String("public-ranges", "", "address `CIDR[,CIDR]` ranges to treat as public internet addresses, e.g. a community network on 10.0.0.0/8 (default $PLUG_PUBLIC_RANGES)")
	f.BoolVar(&cfg.noPortMap, "no-port-mapping", false, "do not ask the home router to open a port (UPnP IGD / NAT-PMP)")
	f.DurationVar(&cfg.grace, "grace", defaultGrace, "how long a friend may be offline before its shards are moved elsewhere")
	f.DurationVar(&cfg.every, "backup-every", defaultEvery, "how often the sources are backed up")
	f.DurationVar(&cfg.settle, "backup-settle", defaultSettle, "how long after a change in the sources to back them up")
	f.BoolVar(&cfg.verbose, "v", false, "log debug messages to stderr")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	dir, err := f.dataDir(std)
	if err != nil {
		return err
	}
	cfg.dir = dataDir(dir)
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return usagef(f.cmd.usage, "up: --listen %q is not a multiaddr: %v", s, err)
		}
		cfg.listen = append(cfg.listen, a)
	}
	for _, b := range bootstrap {
		if b == "none" {
			if len(bootstrap) > 1 {
				return usagef(f.cmd.usage, "up: --bootstrap none cannot be combined with bootstrap peers")
			}
			cfg.noBootstrap = true
			continue
		}
		pi, err := peer.AddrInfoFromString(b)
		if err != nil {
			return usagef(f.cmd.usage, "up: --bootstrap %q is not a multiaddr ending in /p2p/PEER_ID: %v", b, err)
		}
		cfg.bootstrap = append(cfg.bootstrap, *pi)
	}
	rs, from := *ranges, "--public-ranges"
	if !f.set("public-ranges") {
		rs, from = std.getenv("PLUG_PUBLIC_RANGES"), "PLUG_PUBLIC_RANGES"
	}
	if cfg.publicRanges, err = p2p.ParseRanges(rs); err != nil {
		return usagef(f.cmd.usage, "up: %s: %v", from, err)
	}
	if err := checkAPIAddr(cfg.api, cfg.allowRemote); err != nil {
		return usagef(f.cmd.usage, "up: %v", err)
	}
	if cfg.name == "" {
		cfg.name, _ = os.Hostname()
	}
	return runDaemon(ctx, std, cfg)
}

// checkAPIAddr refuses a non-loopback API address unless allowed.
func checkAPIAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--api %q is not HOST:PORT: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("--api %q: HOST must be an IP address or localhost", addr)
	}
	if !ip.IsLoopback() && !allowRemote {
		return fmt.Errorf("--api %s would open the web UI to the network; add --allow-remote-ui if you mean it", addr)
	}
	return nil
}

// app is the running daemon: one struct wires every part together.
type app struct {
	cfg    upConfig
	keys   *crypto.Keys
	db     *kv.DB
	host   host.Host
	node   *p2p.Node
	held   *holdstore.Store
	repo   *store.Repo
	sched  *scheduler
	social *social.Service
	log    *slog.Logger
	// stateSaved is the social service's change count at the last backup
	// that carried the state.
	stateSaved atomic.Uint64
	events     *notifier
	started    time.Time
}

func runDaemon(ctx context.Context, std stdio, cfg upConfig) error {
	debug.SetMemoryLimit(memoryLimit)
	if err := os.MkdirAll(string(cfg.dir), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	release, err := cfg.dir.lock()
	if err != nil {
		return err
	}
	defer release()

	keys, err := crypto.LoadKeys(cfg.dir.keys())
	if errors.Is(err, crypto.ErrNoKeys) {
		var phrase crypto.Phrase
		keys, phrase, err = initialize(cfg.dir, crypto.Phrase{})
		if err == nil {
			printPhrase(std, keys, phrase, string(cfg.dir))
		}
	}
	if err != nil {
		return err
	}

	db, err := kv.Open(cfg.dir.db(), kv.Options{})
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	defer db.Close()

	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	a := &app{cfg: cfg, keys: keys, db: db, events: newNotifier(), started: time.Now()}
	text := slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: level})
	a.log = slog.New(newEventHandler(text, db, a.events))
	return a.run(ctx)
}

func (a *app) run(ctx context.Context) error {
	log := a.log.With("component", "daemon")
	held, repair, err := holdstore.Open(a.cfg.dir.shards(), a.db)
	if err != nil {
		return fmt.Errorf("open the shards held for friends: %w", err)
	}
	a.held = held
	if !repair.Empty() {
		log.Warn("repaired the shards held for friends after a crash", "repair", repair.String())
	}
	if err := p2p.SetPublicRanges(a.cfg.publicRanges); err != nil {
		return err
	}
	if len(a.cfg.publicRanges) > 0 {
		log.Info("treating these address ranges as public", "ranges", fmt.Sprint(a.cfg.publicRanges))
	}
	node, err := p2p.NewNode(p2p.Config{
		HostConfig: p2p.HostConfig{
			Key:           a.keys.LibP2PKey(),
			ListenAddrs:   a.cfg.listen,
			NoPortMapping: a.cfg.noPortMap,
		},
		DB:          a.db,
		Held:        held,
		Name:        a.cfg.name,
		Rendezvous:  a.keys.RendezvousKey(),
		Bootstrap:   a.cfg.bootstrap,
		NoBootstrap: a.cfg.noBootstrap,
		Logger:      a.log,
	})
	if err != nil {
		log.Error("could not start the network", "err", err)
		return fmt.Errorf("start the network: %w", err)
	}
	a.node = node
	h := node.Host()
	a.host = h
	defer node.Close()
	go node.Run(ctx)

	repo, err := store.NewRepo(store.Config{
		DB: a.db, Keys: a.keys, Net: newStoreNetwork(node, a.keys.RendezvousKey()),
		Logger: a.log, Host: a.cfg.name,
	})
	if err != nil {
		return err
	}
	a.repo = repo
	a.sched = newScheduler(a, a.cfg.every, a.cfg.settle)

	os.RemoveAll(a.cfg.dir.uploads())   // archives of imports cut short
	os.RemoveAll(a.cfg.dir.downloads()) // files of downloads cut short
	soc, err := social.New(ctx, social.Config{
		DB: a.db, Keys: a.keys, Node: node, Dir: a.cfg.dir.social(), SearchDir: a.cfg.dir.search(),
		Name: a.cfg.name, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("open the timeline: %w", err)
	}
	defer soc.Close()
	a.social = soc
	if n, _ := a.db.Count(kv.Posts, nil); n > 0 {
		a.stateSaved.Store(^uint64(0)) // unknown: the first scheduled run saves it
	}
	go soc.Run(ctx)

	token, err := a.cfg.dir.ensureAPIToken()
	if err != nil {
		return err
	}
	ui, err := httpui.New(httpui.Config{Token: token, Logger: a.log.With("component", "httpui"), PasswordFile: a.cfg.dir.passwordFile(), RemoteUI: a.cfg.allowRemote}, a)
	if err != nil {
		return err
	}
	defer ui.Close() // cancels backups started from a page before the store closes
	ln, err := net.Listen("tcp", a.cfg.api)
	if err != nil {
		log.Error("could not open the web UI and API", "addr", a.cfg.api, "err", err)
		return fmt.Errorf("listen on --api %s: %w (is another program using that port? try --api 127.0.0.1:0)", a.cfg.api, err)
	}
	// Requests end with the daemon: live pages and long polls are cut when
	// it stops, before the store closes under them.
	baseCtx, stopRequests := context.WithCancel(context.Background())
	defer stopRequests()
	srv := &http.Server{Handler: ui.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return baseCtx }}
	srv.RegisterOnShutdown(stopRequests)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	if err := durable.WriteFile(a.cfg.dir.apiAddr(), []byte(addr+"\n"), 0o644); err != nil {
		srv.Close()
		return fmt.Errorf("write api.addr: %w", err)
	}
	defer os.Remove(a.cfg.dir.apiAddr())
	if !net.ParseIP(hostOf(addr)).IsLoopback() {
		log.Warn("the web UI is open to the network", "addr", addr)
	}

	go a.trimEvents(ctx)
	go a.recoverLoop(ctx)
	go a.sched.run(ctx)
	if a.repo.Dirty() {
		go func() {
			if err := a.repo.Publish(ctx); err != nil {
				log.Warn("the head record could not be given to the friends yet", "err", err)
			}
		}()
	}
	go a.db.RunGC(ctx, kv.DefaultGCInterval)

	log.Info("plug is up", "peer", h.ID().String(), "name", a.cfg.name, "api", "http://"+addr+"/", "pid", os.Getpid())
	for _, s := range p2p.FullAddrs(h) {
		log.Info("listening", "addr", s)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("the web UI and API stopped", "err", err)
		return fmt.Errorf("serve API: %w", err)
	}
	log.Info("plug is shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	log.Info("plug stopped")
	return nil
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// trimEvents bounds the event log once an hour.
func (a *app) trimEvents(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := a.db.TrimEvents(eventsKept); err != nil {
			a.log.Warn("could not trim the event log", "component", "daemon", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status implements httpui.Backend.
func (a *app) Status(ctx context.Context) (httpui.Status, error) {
	friends, err := a.db.Count(kv.Friends, nil)
	if err != nil {
		return httpui.Status{}, err
	}
	snaps, err := a.repo.Snapshots()
	if err != nil {
		return httpui.Status{}, err
	}
	src, _ := a.Sources(ctx)
	if src == nil {
		src = []string{}
	}
	reach := a.node.Reachability()
	health, err := a.repo.Health()
	if err != nil {
		return httpui.Status{}, err
	}
	last, age := a.lastBackup(), int64(-1)
	if !last.IsZero() {
		age = int64(time.Since(last).Seconds())
	}
	return httpui.Status{
		PeerID:         a.host.ID().String(),
		Name:           a.cfg.name,
		ListenAddrs:    p2p.FullAddrs(a.host),
		Reachability:   reach.State,
		ReachText:      reach.Text,
		PublicAddrs:    reach.PublicAddrs,
		Relays:         relaysJSON(reach.Relays),
		DHT:            a.node.DHTStatus(),
		Friends:        friends,
		Version:        version(),
		UptimeS:        int64(time.Since(a.started).Seconds()),
		DataDir:        string(a.cfg.dir),
		PID:            os.Getpid(),
		LastBackup:     last,
		LastBackupAgeS: age,
		Snapshots:      len(snaps),
		Job:            a.repo.Job(),
		Sources:        src,
		CanLose:        &health.CanLose,
	}, nil
}

// Events implements httpui.Backend.
func (a *app) Events(ctx context.Context, after uint64, limit int) ([]kv.Event, error) {
	return a.db.Events(after, limit)
}

// LastEvents implements httpui.Backend.
func (a *app) LastEvents(ctx context.Context, n int) ([]kv.Event, error) {
	return a.db.LastEvents(n)
}

// EventsChanged implements httpui.Backend.
func (a *app) EventsChanged() <-chan struct{} { return a.events.wait() }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

func relaysJSON(rs []p2p.RelayRef) []httpui.Relay {
	var out []httpui.Relay
	for _, r := range rs {
		out = append(out, httpui.Relay{PeerID: r.PeerID, Name: r.Name, Friend: r.Friend})
	}
	return out
}
