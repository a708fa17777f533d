package httpui

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/plug-net/plug/store/durable"
)

// Passwords of the web UI. The owner sets one on the first visit; its bcrypt
// hash is kept in Config.PasswordFile. The API token logs in as well.
const (
	minPasswordLen = 8
	maxPasswordLen = 72 // bcrypt's limit
)

// passwordSet reports whether a password was chosen.
func (s *Server) passwordSet() bool {
	if s.cfg.PasswordFile == "" {
		return false
	}
	_, err := os.Stat(s.cfg.PasswordFile)
	return err == nil
}

// checkSecret reports whether secret is the API token (spaces around it
// ignored, as a pasted token has them) or the password (exactly as typed).
// At most two bcrypt checks run at once, and failures are slowed down.
func (s *Server) checkSecret(secret string) bool {
	if secret == "" {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(secret)), []byte(s.cfg.Token)) == 1 {
		return true
	}
	s.loginSem <- struct{}{}
	defer func() { <-s.loginSem }()
	ok := s.checkPassword(secret)
	if !ok {
		time.Sleep(failedLoginDelay) // while holding the slot: guessing is slow for everyone
	}
	return ok
}

// failedLoginDelay slows password guessing: with two slots, at most a few
// guesses a second get through.
const failedLoginDelay = 500 * time.Millisecond

func (s *Server) checkPassword(secret string) bool {
	if s.cfg.PasswordFile == "" || len(secret) > maxPasswordLen {
		return false
	}
	hash, err := os.ReadFile(s.cfg.PasswordFile)
	if err != nil {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(string(hash))), []byte(secret)) == nil
}

// errPasswordSet is returned when a first password is set twice.
var errPasswordSet = errors.New("a password is already set")

// setPassword stores the hash of the first password; it never replaces one.
func (s *Server) setPassword(pw string) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.PasswordCost)
	if err != nil {
		return fmt.Errorf("hash the password: %w", err)
	}
	// Written whole, and never over an existing password.
	err = durable.CreateFile(s.cfg.PasswordFile, append(hash, '\n'), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return errPasswordSet
	}
	if err != nil {
		return fmt.Errorf("save the password: %w", err)
	}
	return nil
}

// fromLoopback reports whether the request comes from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// needsToken reports whether choosing the first password takes the API
// token: from another machine, through a proxy, or on a UI opened to the
// network.
func (s *Server) needsToken(r *http.Request) bool {
	return s.cfg.RemoteUI || !fromLoopback(r) || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != ""
}

// secureCookie reports whether the session cookie is marked Secure:
// always over TLS and on loopback (browsers treat http://127.0.0.1 and
// http://localhost as secure), not on a plain-HTTP UI opened to the network,
// where browsers would drop it.
func secureCookie(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.sessions.add(struct{}{}), Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode,
	})
}

type loginData struct {
	Failed      bool // the last attempt failed
	HasPassword bool
	TokenFile   string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.authorized(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if s.cfg.PasswordFile != "" && !s.passwordSet() {
		http.Redirect(w, r, "/setup", http.StatusSeeOther) // the first boot
		return
	}
	d := loginData{Failed: r.URL.Query().Has("failed"), HasPassword: s.passwordSet(), TokenFile: s.tokenFile()}
	s.renderOr500(w, http.StatusOK, "login.html", d)
}

// login takes the password or the API token, in the form field "password"
// (or "token", which the first versions of the form used).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	secret := r.PostFormValue("password")
	if secret == "" {
		secret = r.PostFormValue("token")
	}
	if !s.checkSecret(secret) {
		s.log.Warn("login refused", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/login?failed", http.StatusSeeOther)
		return
	}
	s.startSession(w, r)
	s.log.Info("logged in to the web UI", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// setPasswordStep chooses the first password, the setup flow's fourth step.
// From this machine it needs nothing else; from another one (or on a UI
// opened with --allow-remote-ui) it needs the setup session that the setup
// code opened, or the API token, so that whoever reaches the page first
// cannot take the plug. While the plug still keeps its recovery words,
// three of them must have been typed back first.
func (s *Server) setPasswordStep(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if s.cfg.PasswordFile == "" || s.passwordSet() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	_, st := s.setupSession(r)
	var snap setupView
	if st != nil {
		snap = st.snapshot()
	}
	fail := func(code int, problem string) {
		if st != nil {
			s.renderStep(w, r, code, snap, problem)
			return
		}
		s.renderSetup(w, r, code, setupData{Step: "password", NeedToken: s.needsToken(r), Problem: problem})
	}
	if st == nil && s.needsToken(r) && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(r.PostFormValue("token"))), []byte(s.cfg.Token)) != 1 {
		fail(http.StatusForbidden, "From another machine, choosing the password takes the setup code (start again at /setup) or the API token (the one line in "+s.tokenFile()+" on the plug).")
		return
	}
	if words, err := s.recoveryWords(); err == nil && words != nil && !snap.wordsOK {
		fail(http.StatusConflict, "First write down the 24 recovery words and type three of them back: start at /setup.")
		return
	}
	pw, again := r.PostFormValue("password"), r.PostFormValue("confirm")
	switch {
	case len(pw) < minPasswordLen:
		fail(http.StatusBadRequest, fmt.Sprintf("Choose a password of at least %d characters.", minPasswordLen))
		return
	case len(pw) > maxPasswordLen:
		fail(http.StatusBadRequest, fmt.Sprintf("Choose a password of at most %d bytes.", maxPasswordLen))
		return
	case pw != again:
		fail(http.StatusBadRequest, "The two passwords differ: type the same one twice.")
		return
	}
	if err := s.setPassword(pw); err != nil {
		if errors.Is(err, errPasswordSet) {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		s.log.Error("could not save the web UI password", "err", err)
		fail(http.StatusInternalServerError, "The password could not be saved: "+err.Error())
		return
	}
	s.log.Info("web UI password set", "remote", r.RemoteAddr)
	if s.cfg.SetupCodeFile != "" {
		if err := os.Remove(s.cfg.SetupCodeFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("could not delete the setup code, which no longer opens anything", "err", err)
		}
	}
	s.startSession(w, r)
	if st != nil {
		s.endSetupSession(w, r)
		http.Redirect(w, r, "/setup/folders", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
