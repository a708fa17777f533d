package crypto

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cosmos/go-bip39"
)

// PhraseWords is the number of words in a recovery phrase: 256 bits of
// entropy and an 8-bit checksum, 11 bits per word.
const PhraseWords = 24

// Sentinel errors of ParsePhrase, for errors.Is. The error returned wraps one
// of them in a *PhraseError that says which word is wrong.
var (
	ErrWordCount   = errors.New("wrong number of words")
	ErrUnknownWord = errors.New("not a BIP-39 word")
	ErrChecksum    = errors.New("checksum does not match")
)

// PhraseError says what is wrong with a recovery phrase.
type PhraseError struct {
	Err     error  // ErrWordCount, ErrUnknownWord or ErrChecksum
	Words   int    // number of words given
	Word    int    // 1-based position of the offending word (ErrUnknownWord only)
	Got     string // the offending word (ErrUnknownWord only)
	Suggest string // a word list entry that shares its first four letters, if any
}

func (e *PhraseError) Error() string {
	switch {
	case errors.Is(e.Err, ErrWordCount):
		return fmt.Sprintf("the recovery phrase has %d words; it must have exactly %d", e.Words, PhraseWords)
	case errors.Is(e.Err, ErrUnknownWord):
		msg := fmt.Sprintf("word %d of the recovery phrase, %q, is not a BIP-39 word", e.Word, e.Got)
		if e.Suggest != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", e.Suggest)
		}
		return msg
	default:
		return "the recovery phrase checksum does not match: a word is wrong or two words are swapped"
	}
}

func (e *PhraseError) Unwrap() error { return e.Err }

// Phrase is a checked 24-word BIP-39 recovery phrase, normalized to single
// spaces and lower case.
type Phrase struct {
	words string
}

// String returns the phrase as 24 words separated by single spaces. It is the
// owner's master secret: never log it.
func (p Phrase) String() string { return p.words }

// NewPhrase returns a fresh phrase from 256 bits of system randomness.
func NewPhrase() (Phrase, error) {
	entropy, err := bip39.NewEntropy(256)
	if err != nil {
		return Phrase{}, fmt.Errorf("generate entropy: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return Phrase{}, fmt.Errorf("encode recovery phrase: %w", err)
	}
	return Phrase{words: m}, nil
}

// ParsePhrase checks a recovery phrase typed by a person: any whitespace and
// case, exactly 24 words from the BIP-39 English list, with a valid checksum.
// A wrong word is reported, never corrected.
func ParsePhrase(s string) (Phrase, error) {
	words := strings.Fields(strings.ToLower(s))
	if len(words) != PhraseWords {
		return Phrase{}, &PhraseError{Err: ErrWordCount, Words: len(words)}
	}
	for i, w := range words {
		if _, ok := bip39.ReverseWordMap[w]; !ok {
			return Phrase{}, &PhraseError{Err: ErrUnknownWord, Words: len(words), Word: i + 1, Got: w, Suggest: suggest(w)}
		}
	}
	m := strings.Join(words, " ")
	if _, err := bip39.MnemonicToByteArray(m); err != nil {
		return Phrase{}, &PhraseError{Err: ErrChecksum, Words: len(words)}
	}
	return Phrase{words: m}, nil
}

// suggest returns the one word list entry within one typing mistake of w (a
// letter added, dropped or changed), or else the entry sharing w's first four
// letters (BIP-39 words are unique in their first four), or "". It is only a
// hint in the error message: the phrase is never corrected.
func suggest(w string) string {
	found := ""
	for _, cand := range bip39.WordList {
		if withinOneEdit(w, cand) {
			if found != "" {
				found = "" // ambiguous: fall back to the prefix
				break
			}
			found = cand
		}
	}
	if found != "" || len(w) < 4 {
		return found
	}
	for _, cand := range bip39.WordList {
		if strings.HasPrefix(cand, w[:4]) {
			return cand
		}
	}
	return ""
}

// withinOneEdit reports whether a and b differ by at most one inserted,
// deleted or replaced byte.
func withinOneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i == len(a) || a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}
