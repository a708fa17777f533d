package httpui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/plug-net/plug/p2p/invite"
)

// Invite is what POST /api/v1/invites answers (the contract's
// {"code", "expires"}).
type Invite struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// Friend is one friend as the API lists it; the first keys are the
// command-line contract of "plug friends --json".
type Friend struct {
	Name        string    `json:"name"`
	PeerID      string    `json:"peer_id"`
	Online      bool      `json:"online"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	QuotaGiven  int64     `json:"quota_given"`
	UsedGiven   int64     `json:"used_given"`
	QuotaTaken  int64     `json:"quota_taken"`
	UsedTaken   int64     `json:"used_taken"`
	Addrs       []string  `json:"addrs"`
	ShardsGiven int       `json:"shards_given"`
	Added       time.Time `json:"added"`
	// Connection is "direct", "hole-punched", "relayed" or "offline"; Via
	// names the relay of a relayed one; RTTms is the round-trip time.
	Connection string  `json:"connection"`
	Via        string  `json:"via,omitempty"`
	RTTms      float64 `json:"rtt_ms,omitempty"`
	// LinkAddr is the friend's address on the connection in use.
	LinkAddr string `json:"link_addr,omitempty"`
	// RelayLimited marks a relay that carries only a little (a stranger's):
	// enough to pair and to coordinate a hole punch, not to back up.
	RelayLimited bool `json:"relay_limited,omitempty"`
}

// LinkText says how a friend is connected: "direct", "hole-punched",
// "relayed via Cat" or "offline".
func (f Friend) LinkText() string {
	if f.Connection == "relayed" {
		return "relayed via " + f.Via
	}
	if f.Connection == "" {
		if f.Online {
			return "online"
		}
		return "offline"
	}
	return f.Connection
}

// FriendsBackend is the part of the plug that pairs and keeps friends.
type FriendsBackend interface {
	CreateInvite(ctx context.Context, ttl time.Duration) (Invite, error)
	// AcceptInvite pairs with the inviter of code, telling progress what
	// it waits for (it may be nil).
	AcceptInvite(ctx context.Context, code string, progress func(string)) (Friend, error)
	Friends(ctx context.Context) ([]Friend, error)
	// SetQuota sets what this plug gives the friend named by who (name or
	// peer ID).
	SetQuota(ctx context.Context, who string, bytes int64) (Friend, error)
	// RemoveFriend unpairs the friend and returns the bytes freed.
	RemoveFriend(ctx context.Context, who string) (int64, error)
}

func (s *Server) friendRoutes() {
	s.mux.Handle("POST /api/v1/invites", s.api(s.apiCreateInvite))
	s.mux.Handle("GET /api/v1/qr.png", s.api(s.apiQR))
	s.mux.Handle("POST /api/v1/friends/accept", s.api(s.apiAccept))
	s.mux.Handle("GET /api/v1/friends", s.api(s.apiFriends))
	s.mux.Handle("PUT /api/v1/friends/{who}/quota", s.api(s.apiSetQuota))
	s.mux.Handle("DELETE /api/v1/friends/{who}", s.api(s.apiRemoveFriend))
}

// readJSON decodes a JSON body of at most max bytes into v.
func readJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{code: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", max)}
		}
		return &apiError{code: http.StatusBadRequest, msg: "bad JSON body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{code: http.StatusBadRequest, msg: "bad JSON body: trailing data"}
	}
	return nil
}

func (s *Server) apiCreateInvite(w http.ResponseWriter, r *http.Request) error {
	ttl := time.Duration(0)
	if v := r.URL.Query().Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			return &apiError{code: http.StatusBadRequest, msg: "ttl must be a duration from 1m to 720h"}
		}
		ttl = d
	}
	inv, err := s.friends.CreateInvite(r.Context(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inv)
	return nil
}

// apiQR renders text (an invite code) as a QR code PNG for the web UI.
func (s *Server) apiQR(w http.ResponseWriter, r *http.Request) error {
	text := r.URL.Query().Get("text")
	if text == "" || len(text) > 1024 {
		return &apiError{code: http.StatusBadRequest, msg: "text must be 1 to 1024 characters"}
	}
	size := 320
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 64 || n > 2048 {
			return &apiError{code: http.StatusBadRequest, msg: "size must be 64 to 2048 pixels"}
		}
		size = n
	}
	png, err := invite.QRPNG(text, size)
	if err != nil {
		return &apiError{code: http.StatusBadRequest, msg: err.Error()}
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
	return nil
}

func (s *Server) apiAccept(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Code string `json:"code"`
	}
	if err := readJSON(w, r, 4096, &body); err != nil {
		return err
	}
	if !wantsStream(r) {
		f, err := s.friends.AcceptInvite(r.Context(), body.Code, nil)
		if err != nil {
			// Unless it is about the invite, the inviting plug was out of
			// reach or failed.
			return withStatus(err, http.StatusBadGateway)
		}
		writeJSON(w, http.StatusOK, f)
		return nil
	}
	st := newStream(w)
	f, err := s.friends.AcceptInvite(r.Context(), body.Code, func(msg string) { st.send("progress", msg) })
	st.finish(f, err)
	return nil
}

func (s *Server) apiFriends(w http.ResponseWriter, r *http.Request) error {
	fs, err := s.friends.Friends(r.Context())
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []Friend{}
	}
	writeJSON(w, http.StatusOK, fs)
	return nil
}

func (s *Server) apiSetQuota(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		QuotaGiven *int64 `json:"quota_given"`
	}
	if err := readJSON(w, r, 1024, &body); err != nil {
		return err
	}
	if body.QuotaGiven == nil || *body.QuotaGiven < 0 {
		return &apiError{code: http.StatusBadRequest, msg: "quota_given must be a number of bytes ≥ 0"}
	}
	f, err := s.friends.SetQuota(r.Context(), r.PathValue("who"), *body.QuotaGiven)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (s *Server) apiRemoveFriend(w http.ResponseWriter, r *http.Request) error {
	freed, err := s.friends.RemoveFriend(r.Context(), r.PathValue("who"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"freed": freed})
	return nil
}
