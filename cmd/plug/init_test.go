package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/plug-net/plug/crypto"
)

// TestServiceKeepsTheWordsOutOfTheLog: a plug run as a service
// (PLUG_WORDS=file) puts its 24 words in a file only its user may read and
// says where in its log; the words never reach the log.
func TestServiceKeepsTheWordsOutOfTheLog(t *testing.T) {
	dir := dataDir(t.TempDir())
	keys, phrase, err := initialize(dir, crypto.Phrase{})
	if err != nil {
		t.Fatal(err)
	}
	var logb bytes.Buffer
	std := stdio{out: newOutput(&logb), err: newOutput(&logb), getenv: func(string) string { return "" }}
	if err := keepPhrase(std, keys, phrase, dir); err != nil {
		t.Fatal(err)
	}
	words := phrase.String()
	if strings.Contains(logb.String(), words) || strings.Contains(logb.String(), strings.Fields(words)[0]+" "+strings.Fields(words)[1]) {
		t.Fatalf("the words reached the log:\n%s", logb.String())
	}
	if !strings.Contains(logb.String(), dir.recoveryWords()) {
		t.Fatalf("the log does not say where the words are:\n%s", logb.String())
	}
	st, err := os.Stat(dir.recoveryWords())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("recovery-words: %v, mode %v; want 0600", err, st.Mode())
	}
	b, err := os.ReadFile(dir.recoveryWords())
	if err != nil || !strings.Contains(string(b), words) {
		t.Fatalf("recovery-words does not hold the 24 words: %v\n%s", err, b)
	}
	if _, err := crypto.ParsePhrase(strings.TrimSpace(string(b[strings.LastIndex(string(b), "\n\n")+2:]))); err != nil {
		t.Fatalf("the words in the file do not parse back: %v", err)
	}
}
