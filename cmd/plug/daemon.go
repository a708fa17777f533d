package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/p2p/holdstore"
	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/durable"
	"github.com/plug-net/plug/store/kv"
)

// app is the running daemon: one struct wires every part together.
type app struct {
	cfg     upConfig
	keys    *crypto.Keys
	db      *kv.DB
	host    host.Host
	node    *p2p.Node
	held    *holdstore.Store
	repo    *store.Repo
	jobs    *store.BackupJobs
	social  *social.Service
	log     *slog.Logger
	events  *notifier
	started time.Time
	std     stdio
	ui      *httpui.Server
	lan     *lanUI     // nil without --lan-ui
	nameMu  sync.Mutex // cfg.name changes in the setup
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
		switch {
		case err != nil:
		case std.getenv("PLUG_WORDS") == "file":
			err = keepPhrase(std, keys, phrase, cfg.dir)
		default:
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
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	text := slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: level})
	defer closeLogged(slog.New(text), "the store", db.Close) // not into the event log it closes

	a := &app{cfg: cfg, keys: keys, db: db, events: newNotifier(), started: time.Now(), std: std}
	a.log = slog.New(newEventHandler(text, db, a.events))
	return a.run(ctx)
}

func (a *app) run(ctx context.Context) error {
	log := a.log.With("component", "daemon")
	node, err := a.startNode()
	if err != nil {
		return err
	}
	a.node = node
	a.host = node.Host()
	defer closeLogged(a.log, "the network", node.Close)
	go runLogged(ctx, a.log, "the network", node.Run)

	for _, dir := range []string{a.cfg.dir.uploads(), a.cfg.dir.downloads()} {
		// archives of imports and files of downloads cut short
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("could not clear a folder of unfinished transfers", "dir", dir, "err", err)
		}
	}
	soc, err := social.New(ctx, social.Config{
		DB: a.db, Keys: a.keys, Node: node, Dir: a.cfg.dir.social(), SearchDir: a.cfg.dir.search(),
		Name: a.name(), Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("open the timeline: %w", err)
	}
	defer closeLogged(a.log, "the timeline", soc.Close)
	a.social = soc
	go runLogged(ctx, a.log, "the timeline", soc.Run)

	repo, err := store.NewRepo(store.Config{
		DB: a.db, Keys: a.keys, Net: newStoreNetwork(node, a.keys.RendezvousKey()),
		Logger: a.log, Host: a.name(), State: soc, RecoveringMark: a.cfg.dir.recovering(),
	})
	if err != nil {
		return err
	}
	a.repo = repo
	// Backups started from a page stop before the store closes.
	a.jobs = store.NewBackupJobs(repo.BackupNow)
	defer a.jobs.Close()

	token, err := a.cfg.dir.ensureAPIToken()
	if err != nil {
		return err
	}
	ui, err := httpui.New(httpui.Config{
		Token: token, Logger: a.log.With("component", "httpui"), PasswordFile: a.cfg.dir.passwordFile(),
		RemoteUI: a.cfg.allowRemote, UploadDir: a.cfg.dir.uploads(), TokenFile: a.cfg.dir.apiToken(),
		SetupCodeFile: a.cfg.dir.setupCode(), WordsFile: a.cfg.dir.recoveryWords(),
	}, httpui.Backends{Status: a, Friends: friendsAPI{a.node}, Backups: backupsAPI{a}, Jobs: a.jobs, Social: soc, Browse: backupsAPI{a}, Setup: a})
	if err != nil {
		return err
	}
	a.ui = ui
	api, err := a.serveAPI(ui)
	if err != nil {
		return err
	}
	defer api.close(log)
	lanErrc := make(chan error, 1) // never sends without --lan-ui
	if a.cfg.lanUI != "" {
		if a.lan, err = a.serveLAN(ui, api.baseCtx); err != nil {
			return err
		}
		lanErrc = a.lan.errc
		log.Info("web UI on the network", "url", a.lan.url(), "certificate_sha256", a.lan.fingerprint)
	}
	// The background work ends, and is waited for, before the store
	// closes.
	defer a.runBackground(ctx)()

	log.Info("plug is up", "peer", a.host.ID().String(), "name", a.name(), "api", "http://"+api.addr+"/", "pid", os.Getpid())
	for _, s := range p2p.FullAddrs(a.host) {
		log.Info("listening", "addr", s)
	}
	a.tellSetupCode(api.addr)

	select {
	case <-ctx.Done():
	case err := <-api.errc:
		log.Error("the web UI and API stopped", "err", err)
		return fmt.Errorf("serve API: %w", err)
	case err := <-lanErrc:
		log.Error("the web UI on the network stopped", "err", err)
		return fmt.Errorf("serve --lan-ui: %w", err)
	}
	log.Info("plug is shutting down")
	if a.lan != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.lan.shutdown(sctx); err != nil {
			log.Warn("requests still open on the network UI at shutdown were cut", "err", err)
		}
		cancel()
	}
	api.shutdown(log)
	log.Info("plug stopped")
	return nil
}

// startNode opens the shards held for friends and starts the libp2p node.
func (a *app) startNode() (*p2p.Node, error) {
	log := a.log.With("component", "daemon")
	held, repair, err := holdstore.Open(a.cfg.dir.shards(), a.db)
	if err != nil {
		return nil, fmt.Errorf("open the shards held for friends: %w", err)
	}
	a.held = held
	if !repair.Empty() {
		log.Warn("repaired the shards held for friends after a crash", "repair", repair.String())
	}
	if err := p2p.SetPublicRanges(a.cfg.publicRanges); err != nil {
		return nil, err
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
		Name:        a.name(),
		Rendezvous:  a.keys.RendezvousKey(),
		Bootstrap:   a.cfg.bootstrap,
		NoBootstrap: a.cfg.noBootstrap,
		Logger:      a.log,
	})
	if err != nil {
		log.Error("could not start the network", "err", err)
		return nil, fmt.Errorf("start the network: %w", err)
	}
	return node, nil
}

// apiServer serves the web UI and the API.
type apiServer struct {
	srv          *http.Server
	addr         string
	errc         chan error
	stopRequests context.CancelFunc
	baseCtx      context.Context // ends when the daemon stops serving
	apiAddrFile  string
}

// serveAPI listens on --api, serves ui and writes DIR/api.addr.
func (a *app) serveAPI(ui *httpui.Server) (*apiServer, error) {
	log := a.log.With("component", "daemon")
	ln, err := net.Listen("tcp", a.cfg.api)
	if err != nil {
		log.Error("could not open the web UI and API", "addr", a.cfg.api, "err", err)
		return nil, fmt.Errorf("listen on --api %s: %w (is another program using that port? try --api 127.0.0.1:0)", a.cfg.api, err)
	}
	// Requests end with the daemon: live pages and long polls are cut when
	// it stops, before the store closes under them.
	baseCtx, stopRequests := context.WithCancel(context.Background())
	api := &apiServer{addr: ln.Addr().String(), errc: make(chan error, 1), stopRequests: stopRequests, baseCtx: baseCtx, apiAddrFile: a.cfg.dir.apiAddr()}
	api.srv = &http.Server{Handler: ui.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return baseCtx }}
	api.srv.RegisterOnShutdown(stopRequests)
	go func() { api.errc <- api.srv.Serve(ln) }()
	if err := durable.WriteFile(api.apiAddrFile, []byte(api.addr+"\n"), 0o644); err != nil {
		_ = api.srv.Close() // the error that matters is returned below
		stopRequests()
		return nil, fmt.Errorf("write api.addr: %w", err)
	}
	if !net.ParseIP(hostOf(api.addr)).IsLoopback() {
		log.Warn("the web UI is open to the network", "addr", api.addr)
	}
	return api, nil
}

// shutdown stops serving, giving open requests a few seconds.
func (api *apiServer) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := api.srv.Shutdown(ctx); err != nil {
		log.Warn("requests still open at shutdown were cut", "err", err)
	}
}

// close ends the requests still running and removes DIR/api.addr.
func (api *apiServer) close(log *slog.Logger) {
	api.stopRequests()
	if err := os.Remove(api.apiAddrFile); err != nil {
		log.Warn("could not remove api.addr: commands may look for a plug that stopped", "err", err)
	}
}

// runBackground starts the daemon's background work; the function it
// returns stops it and waits for it.
func (a *app) runBackground(ctx context.Context) (stop func()) {
	log := a.log.With("component", "daemon")
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.trimEvents(ctx) })
	wg.Go(func() { a.repo.RunRecovery(ctx) })
	wg.Go(func() { store.NewScheduler(a.repo, a.cfg.every, a.cfg.settle, string(a.cfg.dir)).Run(ctx) })
	wg.Go(func() {
		a.repo.RunChecks(ctx, store.HealConfig{Every: a.cfg.checkEvery, ReadPeriod: a.cfg.readPeriod, Grace: a.cfg.grace})
	})
	if a.repo.Dirty() {
		wg.Go(func() {
			// Busy: the job that runs (a backup asked for at once) publishes.
			if err := a.repo.Publish(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrBusy) {
				log.Warn("the head record could not be given to the friends yet", "err", err)
			}
		})
	}
	wg.Go(func() {
		runLogged(ctx, a.log, "the store's clean-up", func(ctx context.Context) error { return a.db.RunGC(ctx, kv.DefaultGCInterval) })
	})
	return func() {
		cancel()
		wg.Wait()
	}
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

// closeLogged closes a part of the daemon at its end, logging what fails.
func closeLogged(log *slog.Logger, what string, close func() error) {
	if err := close(); err != nil {
		log.Warn("could not close "+what+" cleanly", "component", "daemon", "err", err)
	}
}

// runLogged runs a part of the daemon until ctx ends, logging why it
// stopped if it stopped on its own.
func runLogged(ctx context.Context, log *slog.Logger, what string, run func(context.Context) error) {
	if err := run(ctx); err != nil && ctx.Err() == nil {
		log.Error(what+" stopped", "component", "daemon", "err", err)
	}
}

// tellSetupCode says, on the daemon's standard error (the journal of the
// service), how to set up a plug that has no password yet from another
// machine, with its one-time setup code. Not in the event log: the code is
// a secret until it is used.
func (a *app) tellSetupCode(apiAddr string) {
	if a.lan == nil && !a.cfg.allowRemote {
		return // on loopback the setup needs no code
	}
	code, err := a.ui.SetupCode()
	if errors.Is(err, httpui.ErrSetUp) {
		return
	}
	if err != nil {
		a.log.Warn("no setup code: the setup from another machine takes the API token", "err", err)
		return
	}
	where := "http://" + apiAddr + "/"
	if a.lan != nil {
		where = a.lan.url()
	}
	a.std.err.printf("This plug is not set up yet. On a computer of this network open %s and give the setup code %s\n", where, code)
	a.std.err.println("(\"sudo plug setup-code\" shows it again; the code works once).")
	if a.lan != nil {
		a.std.err.printf("The browser warns that it does not know the plug's certificate: check that it shows the fingerprint SHA-256 %s\n", a.lan.fingerprint)
	}
}
