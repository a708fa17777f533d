package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
	"github.com/plug-net/plug/store/prune"
)

// TestStateTravelsWithBackups: the plug's own state folder is carried by
// every snapshot beside the owner's paths, comes back into another folder
// on a recovered plug, is never "latest" on its own, and its packs survive
// a prune.
func TestStateTravelsWithBackups(t *testing.T) {
	keys := cryptotest.FixedKeys(t)
	net := newMemNet(3)
	r := newTestRepo(t, keys, net)
	ctx := t.Context()
	src, state := t.TempDir(), filepath.Join(t.TempDir(), "social")
	mustOK(t, os.WriteFile(filepath.Join(src, "doc"), randBytes(1, 300<<10), 0o644))
	mustOK(t, os.MkdirAll(filepath.Join(state, "media", "ab"), 0o700))
	mustOK(t, os.WriteFile(filepath.Join(state, "state.jsonl"), randBytes(2, 2<<20), 0o600))
	mustOK(t, os.WriteFile(filepath.Join(state, "media", "ab", "img"), randBytes(3, 1<<20), 0o600))

	s1, err := r.Backup(ctx, []string{src}, BackupOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.State) == 0 || s1.StatePath != state || s1.Files != 1 {
		t.Fatalf("snapshot %+v: want the state carried and only the owner's file counted", s1)
	}
	if s1.NewBytes > 400<<10 {
		t.Fatalf("new_bytes %d counts the state's 3 MiB as the owner's data", s1.NewBytes)
	}

	// A state-only snapshot (no folders to back up) is not "latest".
	mustOK(t, os.WriteFile(filepath.Join(state, "state.jsonl"), randBytes(4, 1<<20), 0o600))
	s2, err := r.Backup(ctx, nil, BackupOptions{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if !s2.StateOnly() {
		t.Fatalf("snapshot of the state alone: %+v", s2)
	}
	if got, err := r.FindSnapshot("latest"); err != nil || got.ID != s1.ID {
		t.Fatalf("latest = %v %v, want the owner's snapshot %s", got.ID.Short(), err, s1.ID.Short())
	}
	if _, err := r.FindSnapshot(s2.ID.String()); err == nil {
		t.Fatal("a state-only snapshot is offered for restore")
	}

	// Forget keeps the owner's snapshot by the retention, and the newest
	// state; prune keeps the state's packs.
	if _, err := r.Forget(ctx, prune.Retention{Last: 1}, true); err != nil {
		t.Fatal(err)
	}
	snaps, _ := r.Snapshots()
	if len(snaps) != 2 {
		t.Fatalf("after forget --keep-last 1: %d snapshots, want the owner's and the newest state", len(snaps))
	}

	// A plug recovered from the same keys gets the newest state back into
	// its own state folder, and the old content of that folder is kept aside.
	r2 := newTestRepo(t, keys, net)
	if _, err := r2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	latest, ok, err := r2.LatestState()
	if err != nil || !ok || latest.ID != s2.ID {
		t.Fatalf("LatestState = %v %v %v, want %s", latest.ID.Short(), ok, err, s2.ID.Short())
	}
	dest := filepath.Join(t.TempDir(), "social")
	mustOK(t, os.MkdirAll(dest, 0o700))
	mustOK(t, os.WriteFile(filepath.Join(dest, "stale"), []byte("x"), 0o600))
	if _, err := r2.RestoreState(ctx, latest, dest); err != nil {
		t.Fatal(err)
	}
	sameTree(t, state, dest)
	if _, err := os.Stat(filepath.Join(dest+".before-recovery", "stale")); err != nil {
		t.Fatalf("what the folder held was not kept aside: %v", err)
	}
	if _, err := os.Stat(dest + ".restoring"); !os.IsNotExist(err) {
		t.Fatal("the temporary restore folder was left behind")
	}
}
