package httpui

import (
	"errors"
	"io/fs"
	"net/http"

	"github.com/plug-net/plug/p2p/invite"
	"github.com/plug-net/plug/social"
	"github.com/plug-net/plug/store"
	"github.com/plug-net/plug/store/kv"
	"github.com/plug-net/plug/store/restorer"
	"github.com/plug-net/plug/store/target"
)

// statuses maps the errors the plug's packages define to the HTTP status
// of the API's answer: the one place that does. An error matches the first
// row with an error it wraps (errors.Is).
var statuses = []struct {
	code int
	errs []error
}{
	{http.StatusConflict, []error{
		store.ErrBusy, restorer.ErrExists, target.ErrTooFewFriends, store.ErrTargetTooHigh,
		invite.ErrUsed, invite.ErrExpired, invite.ErrUnknown,
	}},
	{http.StatusBadRequest, []error{
		store.ErrBadSource, store.ErrNotFolder, store.ErrNotFile,
		social.ErrUnknownSource, social.ErrTooLong, social.ErrBadPost, social.ErrEmptyPost,
		invite.ErrNotInvite, invite.ErrMistyped, invite.ErrMalformed, invite.ErrVersion, invite.ErrOwn,
	}},
	{http.StatusForbidden, []error{social.ErrNotYours}},
	{http.StatusNotFound, []error{
		store.ErrNoSnapshot, store.ErrNotInSnapshot, store.ErrNotSource, social.ErrNoPost, restorer.ErrNoPath,
		fs.ErrNotExist, // a friend not paired (p2p.ErrNotFriend matches it), a medium not stored
	}},
	{http.StatusInsufficientStorage, []error{store.ErrNoRoom, kv.ErrDiskFull}},
	{http.StatusServiceUnavailable, []error{store.ErrClosing, social.ErrClosed}},
}

// statusOf returns the HTTP status for err, or 0 when no row matches.
func statusOf(err error) int {
	for _, row := range statuses {
		for _, e := range row.errs {
			if errors.Is(err, e) {
				return row.code
			}
		}
	}
	return 0
}

// withStatus gives err the status statusOf finds, or fallback: an
// operation whose unknown failures are not the plug's fault (a friend out
// of reach, an archive that does not parse) answers them with its own.
func withStatus(err error, fallback int) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	code := statusOf(err)
	if code == 0 {
		code = fallback
	}
	return &apiError{code: code, msg: err.Error(), err: err}
}
