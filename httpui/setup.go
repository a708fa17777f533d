package httpui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plug-net/plug/store/durable"
)

// The first boot: a plug that has no password yet shows a setup flow
// instead of the password page. Steps: the setup code (from another
// machine only), the plug's name, its 24 recovery words shown and three of
// them typed back, the password, the first folders to back up, an invite
// for the first friend. The first four run in a setup session (a cookie of
// its own); choosing the password ends it and logs the browser in, and the
// last two are ordinary pages.

// SetupBackend is what the setup flow changes in the running plug.
type SetupBackend interface {
	// Rename gives the plug a new name (shown to friends, and NAME.local
	// on the network) and keeps it for the next start.
	Rename(ctx context.Context, name string) error
}

const (
	setupCookie = "plug_setup"
	setupTTL    = time.Hour
	maxNameLen  = 64
	// setupAlphabet makes codes that read aloud and type easily: no 0/O,
	// 1/I/L. Twelve of them are 60 bits.
	setupAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	setupCodeLen  = 12
)

// setupState is one browser's way through the setup.
type setupState struct {
	mu        sync.Mutex
	named     bool   // the name step is done
	wordsSeen bool   // the words were shown and the owner says they are written down
	wordsOK   bool   // three of them were typed back (or there were none to show)
	check     [3]int // the places (0-based) asked for, ascending
}

// newSetupState starts a way through the setup, with three different
// places of the 24 words to ask for, ascending.
func newSetupState() *setupState {
	st := &setupState{}
	var picked [24]bool
	for i := 0; i < 3; {
		n, _ := rand.Int(rand.Reader, big.NewInt(24))
		if !picked[n.Int64()] {
			picked[n.Int64()] = true
			i++
		}
	}
	i := 0
	for p, ok := range picked {
		if ok {
			st.check[i] = p
			i++
		}
	}
	return st
}

// update changes the state under its lock.
func (st *setupState) update(fn func(*setupState)) {
	st.mu.Lock()
	fn(st)
	st.mu.Unlock()
}

// setupView is what a page needs of a setup state: a copy.
type setupView struct {
	named, wordsSeen, wordsOK bool
	check                     [3]int
}

// snapshot reads the state under its lock.
func (st *setupState) snapshot() setupView {
	st.mu.Lock()
	defer st.mu.Unlock()
	return setupView{named: st.named, wordsSeen: st.wordsSeen, wordsOK: st.wordsOK, check: st.check}
}

// setupSession returns the browser's setup state, or nil.
func (s *Server) setupSession(r *http.Request) (string, *setupState) {
	c, err := r.Cookie(setupCookie)
	if err != nil {
		return "", nil
	}
	st, _ := s.setup.get(c.Value)
	return c.Value, st
}

func (s *Server) startSetupSession(w http.ResponseWriter, r *http.Request) *setupState {
	st := newSetupState()
	id := s.setup.add(st)
	http.SetCookie(w, &http.Cookie{
		Name: setupCookie, Value: id, Path: "/", MaxAge: int(setupTTL / time.Second),
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode,
	})
	return st
}

func (s *Server) endSetupSession(w http.ResponseWriter, r *http.Request) {
	if id, _ := s.setupSession(r); id != "" {
		s.setup.drop(id)
	}
	http.SetCookie(w, &http.Cookie{Name: setupCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode})
}

// ErrSetUp answers a setup code asked for a plug that has its password.
var ErrSetUp = errors.New("this plug is set up already: log in with its password, or with the API token")

// SetupCode returns the one-time code that opens the setup flow from
// another machine, making one if there is none (a maker may have put one in
// the file before the first start); ErrSetUp once the password is chosen.
func (s *Server) SetupCode() (string, error) {
	if s.passwordSet() {
		return "", ErrSetUp
	}
	if s.cfg.SetupCodeFile == "" {
		return "", errors.New("httpui: no setup code file")
	}
	if b, err := os.ReadFile(s.cfg.SetupCodeFile); err == nil {
		if c := normalizeCode(string(b)); len(c) >= 8 {
			return formatCode(c), nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the setup code: %w", err)
	}
	code := make([]byte, setupCodeLen)
	for i := range code {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(setupAlphabet))))
		code[i] = setupAlphabet[n.Int64()]
	}
	if err := durable.WriteFile(s.cfg.SetupCodeFile, []byte(formatCode(string(code))+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the setup code: %w", err)
	}
	return formatCode(string(code)), nil
}

// normalizeCode drops what people add or change when they type a code:
// spaces, dashes, lower case.
func normalizeCode(c string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || unicode.IsSpace(r):
			return -1
		}
		return unicode.ToUpper(r)
	}, c)
}

// formatCode groups a code by four: ABCD-EFGH-JKMN.
func formatCode(c string) string {
	var b strings.Builder
	for i, r := range c {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// takeSetupCode checks a typed code against the file and, when it matches,
// removes the file: a code works once.
func (s *Server) takeSetupCode(typed string) (bool, error) {
	typed = normalizeCode(typed)
	if typed == "" || len(typed) > 64 {
		return false, nil
	}
	b, err := os.ReadFile(s.cfg.SetupCodeFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if subtle.ConstantTimeCompare([]byte(typed), []byte(normalizeCode(string(b)))) != 1 {
		return false, nil
	}
	if err := os.Remove(s.cfg.SetupCodeFile); err != nil {
		return false, fmt.Errorf("use up the setup code: %w", err)
	}
	return true, nil
}

// recoveryWords reads the words the plug kept for its first boot (the last
// line of the file); nil when there are none.
func (s *Server) recoveryWords() ([]string, error) {
	if s.cfg.WordsFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(s.cfg.WordsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the recovery words: %w", err)
	}
	text := strings.TrimSpace(string(b))
	words := strings.Fields(text[strings.LastIndexByte(text, '\n')+1:])
	if len(words) != 24 {
		return nil, fmt.Errorf("%s does not end with the 24 recovery words", s.cfg.WordsFile)
	}
	return words, nil
}

// setupData is what setup.html shows.
type setupData struct {
	Step      string // code, name, words, check, nowords, password, folders, invite
	Problem   string
	Name      string
	Host      string // NAME.local
	LANURL    string
	TokenFile string
	NeedToken bool
	Words     []string
	Check     [3]int // 1-based places asked for
	Sources   []string
	Invite    Invite
	Number    int // the step's number, of 6
}

var stepNumber = map[string]int{"code": 0, "name": 1, "words": 2, "check": 2, "nowords": 2, "password": 3, "folders": 4, "invite": 5}

func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, code int, d setupData) {
	if st, err := s.status.Status(r.Context()); err == nil {
		d.Name, d.LANURL, d.Host = st.Name, st.LANUI, st.LANHost
	}
	d.TokenFile = s.tokenFile()
	d.Number = stepNumber[d.Step]
	s.renderOr500(w, code, "setup.html", d)
}

// tokenFile names the API token's file for pages.
func (s *Server) tokenFile() string {
	if s.cfg.TokenFile != "" {
		return s.cfg.TokenFile
	}
	return "DIR/api.token"
}

// setupPage shows the step the browser is at.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) {
	if s.cfg.PasswordFile == "" || s.passwordSet() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	_, st := s.setupSession(r)
	if st == nil {
		if s.needsToken(r) {
			s.renderSetup(w, r, http.StatusOK, setupData{Step: "code"})
			return
		}
		st = s.startSetupSession(w, r) // this machine: no code needed
	}
	s.renderStep(w, r, http.StatusOK, st.snapshot(), "")
}

// renderStep shows the first step not done yet.
func (s *Server) renderStep(w http.ResponseWriter, r *http.Request, code int, st setupView, problem string) {
	d := setupData{Problem: problem, NeedToken: false}
	words, err := s.recoveryWords()
	if err != nil {
		s.log.Error("setup: cannot show the recovery words", "err", err)
		d.Problem = "The recovery words cannot be read: " + err.Error()
	}
	switch {
	case !st.named:
		d.Step = "name"
	case words != nil && !st.wordsOK && !st.wordsSeen:
		d.Step, d.Words = "words", words
	case words != nil && !st.wordsOK:
		d.Step = "check"
		for i, p := range st.check {
			d.Check[i] = p + 1
		}
	case words == nil && !st.wordsOK:
		d.Step = "nowords"
	default:
		d.Step = "password"
	}
	s.renderSetup(w, r, code, d)
}

// withSetup runs a POST of the setup flow for a browser in a setup session.
func (s *Server) withSetup(h func(w http.ResponseWriter, r *http.Request, st *setupState)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if s.cfg.PasswordFile == "" || s.passwordSet() {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		_, st := s.setupSession(r)
		if st == nil {
			http.Redirect(w, r, "/setup", http.StatusSeeOther)
			return
		}
		h(w, r, st)
	}
}

// setupCode opens the setup from another machine: the one-time setup code,
// or the API token.
func (s *Server) setupCode(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if s.cfg.PasswordFile == "" || s.passwordSet() {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	typed := r.PostFormValue("code")
	ok := subtle.ConstantTimeCompare([]byte(strings.TrimSpace(typed)), []byte(s.cfg.Token)) == 1
	if !ok {
		s.loginSem <- struct{}{}
		var err error
		ok, err = s.takeSetupCode(typed)
		if !ok {
			time.Sleep(failedLoginDelay) // guessing is slow for everyone
		}
		<-s.loginSem
		if err != nil {
			s.log.Error("setup: cannot check the setup code", "err", err)
			s.renderSetup(w, r, http.StatusInternalServerError, setupData{Step: "code", Problem: "The setup code cannot be checked: " + err.Error()})
			return
		}
	}
	if !ok {
		s.log.Warn("setup code refused", "remote", r.RemoteAddr)
		s.renderSetup(w, r, http.StatusForbidden, setupData{Step: "code", Problem: "That is not a setup code of this plug, or it was used already: a code works once. " +
			"On the plug, \"sudo plug setup-code\" shows the one to use now."})
		return
	}
	s.log.Info("setup opened from another machine", "remote", r.RemoteAddr)
	s.startSetupSession(w, r)
	http.Redirect(w, r, "/setup", http.StatusSeeOther)
}

func (s *Server) setupName(w http.ResponseWriter, r *http.Request, st *setupState) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	problem := ""
	switch {
	case name == "":
		problem = "Give your plug a name: your friends see it, and it is the plug's address on this network."
	case utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name):
		problem = fmt.Sprintf("Choose a name of at most %d letters.", maxNameLen)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		problem = "Use letters, digits, spaces and punctuation only."
	}
	if problem == "" {
		if err := s.setupB.Rename(r.Context(), name); err != nil {
			s.log.Error("setup: cannot rename the plug", "err", err)
			problem = "The name cannot be kept: " + err.Error()
		}
	}
	if problem != "" {
		s.renderSetup(w, r, http.StatusBadRequest, setupData{Step: "name", Problem: problem})
		return
	}
	st.update(func(st *setupState) { st.named = true })
	http.Redirect(w, r, "/setup", http.StatusSeeOther)
}

// setupWords moves between the words and their check: "written" (the
// owner wrote them down), "again" (show them once more), "next" (there were
// none to show).
func (s *Server) setupWords(w http.ResponseWriter, r *http.Request, st *setupState) {
	words, err := s.recoveryWords()
	if err != nil {
		s.renderStep(w, r, http.StatusInternalServerError, st.snapshot(), "")
		return
	}
	switch r.PostFormValue("do") {
	case "written":
		st.update(func(st *setupState) { st.wordsSeen = true })
	case "again":
		st.update(func(st *setupState) { st.wordsSeen = false })
	case "next":
		if words == nil {
			st.update(func(st *setupState) { st.wordsOK = true })
		}
	}
	http.Redirect(w, r, "/setup", http.StatusSeeOther)
}

// setupCheck takes three of the words back; right, the plug forgets them
// (their file is deleted): they are never shown again.
func (s *Server) setupCheck(w http.ResponseWriter, r *http.Request, st *setupState) {
	words, err := s.recoveryWords()
	if err != nil || words == nil {
		s.renderStep(w, r, http.StatusConflict, st.snapshot(), "")
		return
	}
	snap := st.snapshot()
	wrong := []string{}
	for i, p := range snap.check {
		typed := strings.ToLower(strings.TrimSpace(r.PostFormValue("w" + strconv.Itoa(i+1))))
		if subtle.ConstantTimeCompare([]byte(typed), []byte(words[p])) != 1 {
			wrong = append(wrong, "#"+strconv.Itoa(p+1))
		}
	}
	if len(wrong) > 0 {
		s.renderStep(w, r, http.StatusBadRequest, snap, fmt.Sprintf("Word %s is not right. Look at your paper again, or see the words once more.", strings.Join(wrong, " and ")))
		return
	}
	if err := os.Remove(s.cfg.WordsFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("setup: cannot delete the recovery words", "err", err)
		s.renderStep(w, r, http.StatusInternalServerError, snap, "The words were right, but their file could not be deleted: "+err.Error())
		return
	}
	s.log.Info("the recovery words were written down and checked; the plug deleted its copy")
	st.update(func(st *setupState) { st.wordsOK = true })
	http.Redirect(w, r, "/setup", http.StatusSeeOther)
}

// setupFoldersPage picks the first folders to back up (logged in).
func (s *Server) setupFoldersPage(w http.ResponseWriter, r *http.Request) error {
	return s.showFolders(w, r, http.StatusOK, "")
}

func (s *Server) showFolders(w http.ResponseWriter, r *http.Request, code int, problem string) error {
	src, err := s.backups.Sources(r.Context())
	if err != nil {
		return err
	}
	s.renderSetup(w, r, code, setupData{Step: "folders", Sources: src, Problem: problem})
	return nil
}

func (s *Server) setupAddFolder(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8192)
	p := strings.TrimSpace(r.PostFormValue("path"))
	if p == "" {
		return s.showFolders(w, r, http.StatusBadRequest, "Type the full path of a folder on the plug, such as /home/alice/Documents.")
	}
	if _, err := s.backups.AddSource(r.Context(), p); err != nil {
		var ae *apiError
		code := http.StatusBadRequest
		if errors.As(withStatus(err, http.StatusBadRequest), &ae) {
			code = ae.code
		}
		return s.showFolders(w, r, code, err.Error())
	}
	http.Redirect(w, r, "/setup/folders", http.StatusSeeOther)
	return nil
}

// setupInvitePage makes an invite for the first friend and shows it as a
// QR code (logged in).
func (s *Server) setupInvitePage(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.friends.CreateInvite(r.Context(), 0)
	if err != nil {
		return err
	}
	s.renderSetup(w, r, http.StatusOK, setupData{Step: "invite", Invite: inv})
	return nil
}

// apiSetupCode answers POST /api/v1/setup/code: the code that opens the
// setup from another machine ("plug setup-code"), a new one if the last was
// used.
func (s *Server) apiSetupCode(w http.ResponseWriter, r *http.Request) error {
	code, err := s.SetupCode()
	if errors.Is(err, ErrSetUp) {
		return &apiError{code: http.StatusConflict, msg: err.Error()}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"code": code})
	return nil
}

func (s *Server) setupRoutes() {
	s.mux.HandleFunc("GET /setup", s.setupPage)
	s.mux.HandleFunc("POST /setup/code", s.setupCode)
	s.mux.HandleFunc("POST /setup/name", s.withSetup(s.setupName))
	s.mux.HandleFunc("POST /setup/words", s.withSetup(s.setupWords))
	s.mux.HandleFunc("POST /setup/check", s.withSetup(s.setupCheck))
	s.mux.Handle("GET /setup/folders", s.page(s.setupFoldersPage))
	s.mux.Handle("POST /setup/folders", s.page(s.setupAddFolder))
	s.mux.Handle("GET /setup/invite", s.page(s.setupInvitePage))
	s.mux.Handle("POST /api/v1/setup/code", s.api(s.apiSetupCode))
}
