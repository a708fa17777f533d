package main

import (
	"context"
	"os"
	"runtime/debug"
	"time"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/store/kv"
)

// Status implements httpui.StatusBackend.
func (a *app) Status(ctx context.Context) (httpui.Status, error) {
	friends, err := a.db.Count(kv.Friends, nil)
	if err != nil {
		checks, err := a.repo.FriendHealth()
		if err != nil {
			return httpui.Status{}, err
		}
		var fcs []httpui.FriendCheck
		for _, f := range a.repo.Friends() {
			if h, ok := checks[f.PeerID]; ok {
				fcs = append(fcs, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
			}
		}
		lastCheck, checkAge := a.repo.LastCheck(), int64(-1)
		if !lastCheck.IsZero() {
			checkAge = int64(time.Since(lastCheck).Seconds())
		}
		return httpui.Status{
			LastCheck:     lastCheck,
			LastCheckAgeS: checkAge,
			FriendChecks:  fcs}, err
	}
	snaps, err := a.repo.Snapshots()
	if err != nil {
		checks, err := a.repo.FriendHealth()
		if err != nil {
			return httpui.Status{}, err
		}
		var fcs []httpui.FriendCheck
		for _, f := range a.repo.Friends() {
			if h, ok := checks[f.PeerID]; ok {
				fcs = append(fcs, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
			}
		}
		lastCheck, checkAge := a.repo.LastCheck(), int64(-1)
		if !lastCheck.IsZero() {
			checkAge = int64(time.Since(lastCheck).Seconds())
		}
		return httpui.Status{
			LastCheck:     lastCheck,
			LastCheckAgeS: checkAge,
			FriendChecks:  fcs}, err
	}
	src, err := a.repo.Sources()
	if err != nil {
		checks, err := a.repo.FriendHealth()
		if err != nil {
			return httpui.Status{}, err
		}
		var fcs []httpui.FriendCheck
		for _, f := range a.repo.Friends() {
			if h, ok := checks[f.PeerID]; ok {
				fcs = append(fcs, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
			}
		}
		lastCheck, checkAge := a.repo.LastCheck(), int64(-1)
		if !lastCheck.IsZero() {
			checkAge = int64(time.Since(lastCheck).Seconds())
		}
		return httpui.Status{
			LastCheck:     lastCheck,
			LastCheckAgeS: checkAge,
			FriendChecks:  fcs}, err
	}
	if src == nil {
		src = []string{}
	}
	reach := a.node.Reachability()
	health, err := a.repo.Health()
	if err != nil {
		checks, err := a.repo.FriendHealth()
		if err != nil {
			return httpui.Status{}, err
		}
		var fcs []httpui.FriendCheck
		for _, f := range a.repo.Friends() {
			if h, ok := checks[f.PeerID]; ok {
				fcs = append(fcs, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
			}
		}
		lastCheck, checkAge := a.repo.LastCheck(), int64(-1)
		if !lastCheck.IsZero() {
			checkAge = int64(time.Since(lastCheck).Seconds())
		}
		return httpui.Status{
			LastCheck:     lastCheck,
			LastCheckAgeS: checkAge,
			FriendChecks:  fcs}, err
	}
	last, age := a.repo.LastBackup(), int64(-1)
	if !last.IsZero() {
		age = int64(time.Since(last).Seconds())
	}
	checks, err := a.repo.FriendHealth()
	if err != nil {
		return httpui.Status{}, err
	}
	var fcs []httpui.FriendCheck
	for _, f := range a.repo.Friends() {
		if h, ok := checks[f.PeerID]; ok {
			fcs = append(fcs, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
		}
	}
	lastCheck, checkAge := a.repo.LastCheck(), int64(-1)
	if !lastCheck.IsZero() {
		checkAge = int64(time.Since(lastCheck).Seconds())
	}
	return httpui.Status{
		LastCheck:      lastCheck,
		LastCheckAgeS:  checkAge,
		FriendChecks:   fcs,
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
		SharedHouses:   health.SharedHouses,
	}, nil
}

// Health implements httpui.StatusBackend.
func (a *app) Health(ctx context.Context) (httpui.Health, error) {
	h, err := a.repo.Health()
	return httpui.Health{CanLose: h.CanLose, Target: h.Target, Packs: h.Packs, LostPacks: h.LostPacks, SharedHouses: h.SharedHouses}, err
}

// Events implements httpui.StatusBackend.
func (a *app) Events(ctx context.Context, after uint64, limit int) ([]kv.Event, error) {
	return a.db.Events(after, limit)
}

// LastEvents implements httpui.StatusBackend.
func (a *app) LastEvents(ctx context.Context, n int) ([]kv.Event, error) {
	return a.db.LastEvents(n)
}

// EventsChanged implements httpui.StatusBackend.
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
