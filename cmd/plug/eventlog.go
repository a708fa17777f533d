package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/plug-net/plug/store/kv"
)

// notifier wakes everyone waiting for the next event.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

// wait returns a channel closed at the next notify.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// eventHandler is the slog.Handler of the daemon: every record goes to the
// text log on stderr, and records at Info and above also go to the event log
// in the store, which "plug log" and the web UI read. Secrets are never
// logged by the callers; this handler stores what it is given.
type eventHandler struct {
	next   slog.Handler
	db     *kv.DB
	notify *notifier
	attrs  []slog.Attr // accumulated With attributes, group-qualified
	group  string
}

func newEventHandler(next slog.Handler, db *kv.DB, n *notifier) *eventHandler {
	return &eventHandler{next: next, db: db, notify: n}
}

func (h *eventHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	if h.next.Enabled(ctx, r.Level) {
		errs = append(errs, h.next.Handle(ctx, r))
	}
	if r.Level < slog.LevelInfo {
		if len(errs) > 0 {
			return errs[0]
		}
		return nil
	}
	e := kv.Event{Time: r.Time, Level: r.Level.String(), Message: r.Message, Attrs: map[string]string{}}
	var addAttr func(prefix string, a slog.Attr)
	addAttr = func(prefix string, a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		if a.Value.Kind() == slog.KindGroup {
			p := prefix + a.Key + "."
			if a.Key == "" {
				p = prefix
			}
			for _, g := range a.Value.Group() {
				addAttr(p, g)
			}
			return
		}
		if prefix == "" && a.Key == "component" {
			e.Component = a.Value.String()
			return
		}
		e.Attrs[prefix+a.Key] = a.Value.String()
	}
	for _, a := range h.attrs {
		addAttr("", a)
	}
	prefix := ""
	if h.group != "" {
		prefix = h.group + "."
	}
	r.Attrs(func(a slog.Attr) bool { addAttr(prefix, a); return true })
	if len(e.Attrs) == 0 {
		e.Attrs = nil
	}
	if _, err := h.db.AppendEvent(e); err != nil {
		errs = append(errs, fmt.Errorf("event log: %w", err))
	} else {
		h.notify.notify()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		if h.group != "" {
			a = slog.Attr{Key: h.group + "." + a.Key, Value: a.Value}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	if h.group != "" {
		name = h.group + "." + name
	}
	c.group = name
	return &c
}
