package prune

import (
	"testing"
	"time"

	"github.com/plug-net/plug/store/data"
)

func TestRetention(t *testing.T) {
	var snaps []data.Snapshot
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)
	for i := range 120 { // one snapshot a day
		snaps = append(snaps, data.Snapshot{ID: data.ID{byte(i), byte(i >> 8)}, Time: start.AddDate(0, 0, i)})
	}
	keep := DefaultRetention.keep(snaps)
	// 5 daily + 3 weekly + 3 monthly, with overlaps: the last 5 days, the
	// newest of the 3 last weeks (2 more), of the 3 last months (2 more).
	if len(keep) < 7 || len(keep) > 11 {
		t.Fatalf("default retention keeps %d of 120 daily snapshots", len(keep))
	}
	for i := 115; i < 120; i++ {
		if !keep[snaps[i].ID] {
			t.Fatalf("day %d not kept", i)
		}
	}
	if keep[snaps[0].ID] {
		t.Fatal("the oldest snapshot is kept")
	}
}

// TestKeepState: of the state-only snapshots only the newest is kept, and
// only when it is the newest of all.
func TestKeepState(t *testing.T) {
	day := time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)
	owner := func(i int) data.Snapshot {
		return data.Snapshot{ID: data.ID{byte(i)}, Time: day.AddDate(0, 0, i), Paths: []string{"/home"}}
	}
	state := func(i int) data.Snapshot { return data.Snapshot{ID: data.ID{byte(i)}, Time: day.AddDate(0, 0, i)} }
	ret := Retention{Last: 10}
	if keep := ret.Keep([]data.Snapshot{owner(1), state(2), state(3)}); !keep[data.ID{1}] || keep[data.ID{2}] || !keep[data.ID{3}] {
		t.Fatalf("kept %v, want the owner's snapshot and the newest state-only one", keep)
	}
	if keep := ret.Keep([]data.Snapshot{state(1), owner(2)}); keep[data.ID{1}] || !keep[data.ID{2}] {
		t.Fatalf("kept %v, want only the owner's snapshot (the state-only one is older)", keep)
	}
}
