package main

import (
	"context"
	"os"
	"time"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p"
	"github.com/plug-net/plug/store/kv"
)

// Status implements httpui.StatusBackend.
func (a *app) Status(ctx context.Context) (httpui.Status, error) {
	friends, err := a.db.Count(kv.Friends, nil)
	if err != nil {
		return httpui.Status{}, err
	}
	snaps, err := a.repo.Snapshots()
	if err != nil {
		return httpui.Status{}, err
	}
	src, err := a.repo.Sources()
	if err != nil {
		return httpui.Status{}, err
	}
	if src == nil {
		src = []string{}
	}
	health, err := a.repo.Health()
	if err != nil {
		return httpui.Status{}, err
	}
	checks, err := a.friendChecks()
	if err != nil {
		return httpui.Status{}, err
	}
	reach := a.node.Reachability()
	last, lastCheck := a.repo.LastBackup(), a.repo.LastCheck()
	st := httpui.Status{
		PeerID:         a.host.ID().String(),
		Name:           a.name(),
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
		LastBackupAgeS: ageS(last),
		Snapshots:      len(snaps),
		Job:            a.repo.Job(),
		Sources:        src,
		CanLose:        &health.CanLose,
		SharedHouses:   health.SharedHouses,
		LastCheck:      lastCheck,
		LastCheckAgeS:  ageS(lastCheck),
		FriendChecks:   checks,
	}
	if a.lan != nil {
		st.LANUI, st.LANHost, st.UICertSHA256 = a.lan.url(), a.lan.hostName(), a.lan.fingerprint
	}
	return st, nil
}

// ageS is the seconds since t, -1 for never (zero).
func ageS(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return int64(time.Since(t).Seconds())
}

// friendChecks is what the last scheduled check found at each friend.
func (a *app) friendChecks() ([]httpui.FriendCheck, error) {
	checks, err := a.repo.FriendHealth()
	if err != nil {
		return nil, err
	}
	var out []httpui.FriendCheck
	for _, f := range a.repo.Friends() {
		if h, ok := checks[f.PeerID]; ok {
			out = append(out, httpui.FriendCheck{PeerID: f.PeerID, Name: f.Name, Checked: h.Checked, Proved: h.Proved, Failed: h.Failed})
		}
	}
	return out, nil
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

func relaysJSON(rs []p2p.RelayRef) []httpui.Relay {
	var out []httpui.Relay
	for _, r := range rs {
		out = append(out, httpui.Relay{PeerID: r.PeerID, Name: r.Name, Friend: r.Friend})
	}
	return out
}
