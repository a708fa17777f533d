package crypto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// goldenPhrase is the BIP-39 reference vector for 32 bytes of 0x00.
const goldenPhrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"

type golden struct {
	Phrase        string `json:"phrase"`
	PeerID        string `json:"peer_id"`
	AgeRecipient  string `json:"age_recipient"`
	ChunkIDKey    string `json:"chunk_id_key"`
	RendezvousKey string `json:"rendezvous_key"`
}

func goldenOf(t *testing.T, phrase string) golden {
	t.Helper()
	p, err := ParsePhrase(phrase)
	if err != nil {
		t.Fatal(err)
	}
	k, err := DeriveKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	ck, rk := k.ChunkIDKey(), k.RendezvousKey()
	return golden{
		Phrase:        p.String(),
		PeerID:        k.PeerID().String(),
		AgeRecipient:  k.AgeRecipient().String(),
		ChunkIDKey:    hex.EncodeToString(ck[:]),
		RendezvousKey: hex.EncodeToString(rk[:]),
	}
}

// TestGoldenKeys pins the derivation: a fixed phrase must always give the same
// peer ID, age recipient and keys, or recovered plugs would not find their data.
func TestGoldenKeys(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	got := goldenOf(t, goldenPhrase)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want golden
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("derived keys changed:\n got %+v\nwant %+v", got, want)
	}
	if !strings.HasPrefix(got.AgeRecipient, "age1pq1") {
		t.Errorf("age recipient %q is not a post-quantum hybrid recipient", got.AgeRecipient)
	}
}

func TestDeriveKeysIsDeterministicAndDistinct(t *testing.T) {
	a := goldenOf(t, goldenPhrase)
	b := goldenOf(t, strings.ToUpper("  "+strings.ReplaceAll(goldenPhrase, " ", "\n\t ")+"\n"))
	if a != b {
		t.Fatalf("same words with other spacing and case gave other keys:\n%+v\n%+v", a, b)
	}
	p, err := NewPhrase()
	if err != nil {
		t.Fatal(err)
	}
	c := goldenOf(t, p.String())
	if c.PeerID == a.PeerID || c.ChunkIDKey == a.ChunkIDKey || c.RendezvousKey == a.RendezvousKey || c.AgeRecipient == a.AgeRecipient {
		t.Fatalf("a fresh phrase shares a key with the golden phrase: %+v", c)
	}
	if c.ChunkIDKey == c.RendezvousKey {
		t.Fatal("chunk-ID key equals rendezvous key: labels are not separating keys")
	}
}

func TestNewPhrase(t *testing.T) {
	p, err := NewPhrase()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(p.String())); n != PhraseWords {
		t.Fatalf("new phrase has %d words, want %d", n, PhraseWords)
	}
	if _, err := ParsePhrase(p.String()); err != nil {
		t.Fatalf("new phrase does not parse: %v", err)
	}
}

func TestParsePhraseErrors(t *testing.T) {
	words := strings.Fields(goldenPhrase)
	with := func(i int, w string) string {
		c := append([]string(nil), words...)
		c[i] = w
		return strings.Join(c, " ")
	}
	tests := []struct {
		name     string
		phrase   string
		sentinel error
		mention  string
	}{
		{"23 words", strings.Join(words[:23], " "), ErrWordCount, "has 23 words"},
		{"25 words", goldenPhrase + " abandon", ErrWordCount, "has 25 words"},
		{"empty", "", ErrWordCount, "has 0 words"},
		{"unknown word 7", with(6, "abandonn"), ErrUnknownWord, `word 7 of the recovery phrase, "abandonn"`},
		{"unknown word suggests", with(23, "artx"), ErrUnknownWord, `did you mean "art"`},
		{"valid words bad checksum", with(23, "zoo"), ErrChecksum, "checksum does not match"},
		{"swapped words", with(0, "art"), ErrChecksum, "checksum does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePhrase(tt.phrase)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("ParsePhrase: err = %v, want %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not say %q", err, tt.mention)
			}
		})
	}
}

func TestKeysSaveLoad(t *testing.T) {
	p, _ := ParsePhrase(goldenPhrase)
	k, err := DeriveKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if _, err := LoadKeys(path); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("LoadKeys of a missing file: %v, want ErrNoKeys", err)
	}
	if err := k.SaveKeys(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Fatalf("keys file mode %o, want 600", got)
	}
	if err := k.SaveKeys(path); err == nil {
		t.Fatal("SaveKeys overwrote an existing keys file")
	}
	l, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.PeerID() != k.PeerID() || l.ChunkIDKey() != k.ChunkIDKey() || l.RendezvousKey() != k.RendezvousKey() ||
		l.AgeRecipient().String() != k.AgeRecipient().String() || !l.Identity().Equal(k.Identity()) {
		t.Fatal("loaded keys differ from saved keys")
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte("abandon")) {
		t.Fatal("keys file contains the recovery phrase")
	}
	// A damaged file is refused with a message naming the damage.
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`"chunk_id": "`), []byte(`"chunk_id": "zz`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(path); err == nil || !strings.Contains(err.Error(), "chunk-id") {
		t.Fatalf("LoadKeys of a damaged file: %v", err)
	}
}

func TestAgeRoundTrip(t *testing.T) {
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 20} {
		plain := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n)}).Read(plain)
		var buf bytes.Buffer
		w, err := Encrypt(&buf, k.AgeRecipient())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		hdr := bytes.Index(buf.Bytes(), []byte("\n--- "))
		body := int64(buf.Len() - (hdr + bytes.IndexByte(buf.Bytes()[hdr+1:], '\n') + 2))
		if got, want := body, EncryptedSize(int64(n)); got != want {
			t.Errorf("n=%d: body is %d bytes, EncryptedSize says %d", n, got, want)
		}
		ct := buf.Bytes()
		r, err := Decrypt(bytes.NewReader(ct), k.AgeIdentity())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: decrypted bytes differ", n)
		}
		if n > 0 { // one flipped bit in the payload is detected
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			r, err := Decrypt(bytes.NewReader(bad), k.AgeIdentity())
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatalf("n=%d: a flipped bit was not detected", n)
			}
		}
	}
	// Another owner cannot decrypt.
	ko := otherKeys(t)
	var buf bytes.Buffer
	encryptTo(t, &buf, k.AgeRecipient(), []byte("secret"))
	if _, err := Decrypt(&buf, ko.AgeIdentity()); err == nil {
		t.Fatal("another owner's identity decrypted the file")
	} else if !errors.Is(err, age.ErrIncorrectIdentity) {
		var nm *age.NoIdentityMatchError
		if !errors.As(err, &nm) {
			t.Fatalf("wrong identity: %v, want no identity match", err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	msg := []byte("head record v7")
	sig := Sign(k.Identity(), "head", msg)
	pub, err := PeerPublicKey(k.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(k.PublicKey()) {
		t.Fatal("public key from peer ID differs from the identity's")
	}
	if err := Verify(pub, "head", msg, sig); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	tests := []struct {
		name string
		pub  ed25519.PublicKey
		ctx  string
		msg  []byte
		sig  []byte
	}{
		{"other context", pub, "post", msg, sig},
		{"other message", pub, "head", []byte("head record v8"), sig},
		{"short signature", pub, "head", msg, sig[:10]},
		{"other key", ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey), "head", msg, sig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.pub, tt.ctx, tt.msg, tt.sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func FuzzParsePhrase(f *testing.F) {
	f.Add(goldenPhrase)
	f.Add("abandon")
	f.Add(strings.Repeat("zoo ", 24))
	f.Add("\xff\xfe " + goldenPhrase)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePhrase(s)
		if err != nil {
			var pe *PhraseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *PhraseError: %v", err)
			}
			return
		}
		if n := len(strings.Fields(p.String())); n != PhraseWords {
			t.Fatalf("accepted a phrase of %d words", n)
		}
		again, err := ParsePhrase(p.String())
		if err != nil || again != p {
			t.Fatalf("normalized phrase does not round-trip: %v", err)
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	plain := make([]byte, 16<<20)
	rand.NewChaCha8([32]byte{}).Read(plain)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		encryptTo(b, io.Discard, k.AgeRecipient(), plain)
	}
}

// encryptTo encrypts plain to dst for r, failing the test on any error.
// otherKeys returns the keys of another owner, from new words.
func otherKeys(t testing.TB) *Keys {
	t.Helper()
	other, err := NewPhrase()
	if err != nil {
		t.Fatal(err)
	}
	k, err := DeriveKeys(other)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func encryptTo(t testing.TB, dst io.Writer, r age.Recipient, plain []byte) {
	t.Helper()
	w, err := Encrypt(dst, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	p, _ := ParsePhrase(goldenPhrase)
	k, _ := DeriveKeys(p)
	plain := make([]byte, 16<<20)
	var buf bytes.Buffer
	encryptTo(b, &buf, k.AgeRecipient(), plain)
	ct := buf.Bytes()
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Decrypt(bytes.NewReader(ct), k.AgeIdentity())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
