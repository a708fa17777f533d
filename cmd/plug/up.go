package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/store"
)

// Defaults of "plug up".
const (
	defaultAPI   = "127.0.0.1:7777"
	defaultGrace = 72 * time.Hour
	// memoryLimit is the soft limit of the Go heap: the daemon gives memory
	// back before it grows past it (a plug may live on a 512 MiB board).
	// The resident set is this plus about 31 MiB of the binary's mapped
	// code. Backing up a million small files, the live heap is 60-80 MB:
	// 92 MiB kept the owner at 118 MiB resident (96 MiB: 125-130), for 2-5%
	// more CPU restoring them (88 MiB: 8-11% more).
	memoryLimit = 92 << 20
	// eventsKept bounds the event log.
	eventsKept = 50_000
)

// upConfig is the command line of "plug up".
type upConfig struct {
	dir         dataDir
	api         string
	allowRemote bool
	lanUI       string // --lan-ui: HOST:PORT of the HTTPS web UI on the network, "" for none
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
	checkEvery   time.Duration
	readPeriod   time.Duration
	verbose      bool
}

func cmdUp(ctx context.Context, std stdio, args []string) error {
	f := newFlags("up", std)
	var listen, bootstrap multiFlag
	cfg := upConfig{}
	f.StringVar(&cfg.api, "api", defaultAPI, "`HOST:PORT` of the web UI and JSON API (port 0 picks a free one)")
	f.BoolVar(&cfg.allowRemote, "allow-remote-ui", false, "allow --api on a non-loopback address (the UI is then reachable from the network)")
	f.StringVar(&cfg.lanUI, "lan-ui", "", "also serve the web UI to the local network over HTTPS at `HOST:PORT` (\":7443\": every address), with a certificate the plug makes, as https://NAME.local:PORT/ (mDNS); the packaged service does")
	f.Var(&listen, "listen", "libp2p listen `MULTIADDR` (repeatable; default TCP and QUIC on port 7778)")
	f.Var(&bootstrap, "bootstrap", "DHT bootstrap peer `MULTIADDR` (repeatable), or \"none\" (default: the public IPFS DHT)")
	f.StringVar(&cfg.name, "name", "", "this plug's `NAME`, shown to friends and as NAME.local (default: the name chosen in the setup page, else the host name)")
	ranges := f.String("public-ranges", "", "address `CIDR[,CIDR]` ranges to treat as public internet addresses, e.g. a community network on 10.0.0.0/8 (default $PLUG_PUBLIC_RANGES)")
	f.BoolVar(&cfg.noPortMap, "no-port-mapping", false, "do not ask the home router to open a port (UPnP IGD / NAT-PMP)")
	f.DurationVar(&cfg.grace, "grace", defaultGrace, "how long a friend may be offline before its shards are moved elsewhere")
	f.DurationVar(&cfg.every, "backup-every", store.DefaultEvery, "how often the sources are backed up")
	f.DurationVar(&cfg.settle, "backup-settle", store.DefaultSettle, "how long after a change in the sources to back them up")
	f.DurationVar(&cfg.checkEvery, "check-every", store.DefaultCheckEvery, "how often the friends are asked to prove they hold your data; a friend that fails, or is gone longer than --grace, is replaced by itself")
	f.DurationVar(&cfg.readPeriod, "check-period", store.DefaultReadPeriod, "how long it takes the checks to read every shard once in full")
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
	if cfg.bootstrap, cfg.noBootstrap, err = parseBootstrap(bootstrap); err != nil {
		return usagef(f.cmd.usage, "up: %v", err)
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
	if cfg.lanUI != "" {
		if _, _, err := net.SplitHostPort(cfg.lanUI); err != nil {
			return usagef(f.cmd.usage, "up: --lan-ui %q is not HOST:PORT (\":7443\" for every address): %v", cfg.lanUI, err)
		}
	}
	if cfg.name == "" {
		cfg.name = savedName(cfg.dir)
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

// parseBootstrap reads the --bootstrap flags: peers (a peer given at several
// addresses, as its TCP and its QUIC one, is one peer dialed at any of
// them), or "none" alone.
func parseBootstrap(flags []string) (peers []peer.AddrInfo, none bool, err error) {
	for _, b := range flags {
		if b == "none" {
			if len(flags) > 1 {
				return nil, false, errors.New("--bootstrap none cannot be combined with bootstrap peers")
			}
			return nil, true, nil
		}
		pi, err := peer.AddrInfoFromString(b)
		if err != nil {
			return nil, false, fmt.Errorf("--bootstrap %q is not a multiaddr ending in /p2p/PEER_ID: %v", b, err)
		}
		if i := slices.IndexFunc(peers, func(q peer.AddrInfo) bool { return q.ID == pi.ID }); i >= 0 {
			peers[i].Addrs = append(peers[i].Addrs, pi.Addrs...)
			continue
		}
		peers = append(peers, *pi)
	}
	return peers, false, nil
}
