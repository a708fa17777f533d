// Package cryptotest gives tests the keys of a plug.
package cryptotest

import (
	"testing"

	"github.com/plug-net/plug/crypto"
)

// FixedPhrase is a valid recovery phrase that tests share, so that their
// chunk IDs and keys are the same at every run.
const FixedPhrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"

// FixedKeys derives the keys of FixedPhrase.
func FixedKeys(tb testing.TB) *crypto.Keys {
	tb.Helper()
	p, err := crypto.ParsePhrase(FixedPhrase)
	if err != nil {
		tb.Fatal(err)
	}
	return derive(tb, p)
}

// NewKeys derives the keys of a new plug from a fresh recovery phrase.
func NewKeys(tb testing.TB) *crypto.Keys {
	tb.Helper()
	p, err := crypto.NewPhrase()
	if err != nil {
		tb.Fatal(err)
	}
	return derive(tb, p)
}

func derive(tb testing.TB, p crypto.Phrase) *crypto.Keys {
	tb.Helper()
	k, err := crypto.DeriveKeys(p)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
