package p2p

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRefusalsDoNotFlood: 20,000 refusals from many strangers in a minute
// make at most a dozen log lines, and the minute's sum is logged.
func TestRefusalsDoNotFlood(t *testing.T) {
	var buf bytes.Buffer
	r := newRefusals(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Now()
	for i := range 20_000 {
		r.note(peer.ID(fmt.Sprintf("peer-%d", i%500)), "the shard protocol", now.Add(time.Duration(i)*time.Millisecond))
	}
	r.note("late", "the head protocol", now.Add(2*time.Minute)) // a new window sums up the last
	lines := strings.Count(buf.String(), "\n")
	if lines > refusalsLoggedMax+2 {
		t.Fatalf("%d log lines for 20,000 refusals:\n%s", lines, buf.String())
	}
	if !strings.Contains(buf.String(), "refused=19990") || !strings.Contains(buf.String(), "peers=500") {
		t.Fatalf("the minute's refusals are not summed up:\n%s", buf.String())
	}
}
