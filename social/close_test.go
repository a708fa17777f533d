package social

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/plug-net/plug/p2p"
)

// TestCloseEndsItsWork: Close cancels what the service is doing in the
// background, even when nobody answers it — a push and a pull to a friend
// that never replies, a friend's request that never arrives whole, an
// import of a feed that never comes, Run — and returns once all of it has
// ended, leaving no goroutine behind.
func TestCloseEndsItsWork(t *testing.T) {
	ann, bob := newPlug(t, "ann"), newPlug(t, "bob")
	pair(t, ann, bob)
	ctx := t.Context()

	// Bob's plug takes feed requests and never answers them.
	if err := bob.svc.Close(); err != nil {
		t.Fatal(err)
	}
	var pulls, pushes atomic.Int32
	hang := make(chan struct{})
	defer close(hang)
	bob.host.SetStreamHandler(p2p.ProtoFeed, func(st network.Stream) {
		defer func() { _ = st.Close() }() // Ann's plug resets it: closing fails, and loses nothing
		b, err := p2p.ReadFrame(st, maxFeedRequest)
		if err != nil {
			return
		}
		switch q, _ := decodeFeedRequest(b); q.Op {
		case "pull":
			pulls.Add(1)
		case "push":
			pushes.Add(1)
		}
		<-hang
	})
	// A feed server that never sends the feed.
	fetching := make(chan error, 1)
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetching <- nil
		<-r.Context().Done()
	}))
	defer feed.Close()

	ran := make(chan error, 1)
	go func() { ran <- ann.svc.Run(context.Background()) }() // pulls from Bob at once
	if _, err := ann.svc.Post(ctx, "is anybody there?", nil); err != nil {
		t.Fatal(err)
	}
	imported := make(chan error, 1)
	go func() {
		_, err := ann.svc.Import(context.Background(), SourceFeed, feed.URL+"/feed.xml", nil)
		imported <- err
	}()
	// Bob's plug sends Ann half a request.
	st, err := bob.host.NewStream(ctx, ann.id(), p2p.ProtoFeed)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	if _, err := st.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}

	eventually(t, "Ann's plug waits for Bob's answers to a pull and a push", func() bool { return pulls.Load() > 0 && pushes.Load() > 0 })
	eventually(t, "Ann's plug waits for the rest of Bob's request", func() bool { return len(goroutines(serviceFrame+"handleFeed")) > 0 })
	if err := result(t, "the import's request for the feed", fetching); err != nil {
		t.Fatal(err)
	}

	closed := make(chan error, 1)
	go func() { closed <- ann.svc.Close() }()
	if err := result(t, "Close", closed); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := result(t, "Run", ran); err != nil {
		t.Errorf("Run stopped by Close = %v, want nil", err)
	}
	if err := result(t, "the import", imported); !errors.Is(err, context.Canceled) {
		t.Errorf("the import cut short by Close = %v, want context.Canceled", err)
	}
	if gs := serviceGoroutines(); len(gs) > 0 {
		t.Fatalf("%d goroutines of the service outlive Close:\n%s", len(gs), strings.Join(gs, "\n\n"))
	}

	// Once closed, the service starts nothing.
	if err := ann.svc.Run(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := ann.svc.Import(ctx, SourceFeed, feed.URL, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Import after Close = %v, want ErrClosed", err)
	}
	if err := ann.svc.Close(); err != nil {
		t.Errorf("a second Close = %v, want nil", err)
	}
}

// result waits for what ends, and fails the test with the service's
// goroutines when it has not ended after waitFor.
func result(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitFor):
		t.Fatalf("%s has not ended after %v; the service's goroutines:\n%s", what, waitFor, strings.Join(goroutines(serviceFrame), "\n\n"))
		return nil
	}
}
