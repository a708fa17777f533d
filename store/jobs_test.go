package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/plug-net/plug/crypto/cryptotest"
)

// TestBackupJobs: a job started on its own runs the owner's backup, keeps
// its progress and result for whoever asks later, refuses a second job
// while it runs, and Close cancels it and refuses new ones.
func TestBackupJobs(t *testing.T) {
	r := newTestRepo(t, cryptotest.FixedKeys(t), newMemNet(3))
	src := t.TempDir()
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), randBytes(uint64(i), 300<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js := NewBackupJobs(r.BackupNow)
	j, started, err := js.Start([]string{src})
	if err != nil || !started {
		t.Fatalf("Start: %v started %v", err, started)
	}
	if again, started, err := js.Start([]string{src}); err != nil || started || again != j {
		t.Fatalf("a second Start while one runs: %v started %v, want the running job", err, started)
	}
	if js.Get(j.ID) != j || js.Get("nope") != nil {
		t.Fatal("Get does not find the job by its ID")
	}
	for {
		st, changed := j.State()
		if st.Done {
			if st.Err != nil || st.Snapshot.Files != 20 || st.Progress == nil || st.Progress.Phase != "done" {
				t.Fatalf("job ended with %+v", st)
			}
			break
		}
		<-changed
	}
	snaps, _ := r.Snapshots()
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots after the job, want 1", len(snaps))
	}
	js.Close()
	if _, _, err := js.Start([]string{src}); err != ErrClosing {
		t.Fatalf("Start after Close: %v, want ErrClosing", err)
	}
}
