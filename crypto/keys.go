package crypto

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/cosmos/go-bip39"
	p2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/plug-net/plug/store/durable"
)

// HKDF labels, one per key (DESIGN.md "Keys"). Changing one changes every
// plug's identity: never do it.
const (
	LabelIdentity   = "plug/identity"
	LabelAge        = "plug/age"
	LabelChunkID    = "plug/chunk-id"
	LabelRendezvous = "plug/rendezvous"

	hkdfSalt = "plug v1"
)

// Keys are every secret a plug holds, all derived from its recovery phrase.
type Keys struct {
	identity   ed25519.PrivateKey
	age        *age.HybridIdentity
	chunkID    [32]byte
	rendezvous [32]byte
}

// DeriveKeys derives a plug's keys from its recovery phrase: the BIP-39 seed
// (PBKDF2, empty passphrase) is the HKDF-SHA256 secret, with one label per key.
func DeriveKeys(p Phrase) (*Keys, error) {
	if p.words == "" {
		return nil, errors.New("derive keys: empty recovery phrase")
	}
	seed := bip39.NewSeed(p.words, "")
	derive := func(label string) ([32]byte, error) {
		var k [32]byte
		b, err := hkdf.Key(sha256.New, seed, []byte(hkdfSalt), label, len(k))
		if err != nil {
			return k, fmt.Errorf("derive %s: %w", label, err)
		}
		copy(k[:], b)
		return k, nil
	}
	var (
		out     Keys
		errs    []error
		id      [32]byte
		ageSeed [32]byte
		err     error
	)
	id, err = derive(LabelIdentity)
	errs = append(errs, err)
	ageSeed, err = derive(LabelAge)
	errs = append(errs, err)
	out.chunkID, err = derive(LabelChunkID)
	errs = append(errs, err)
	out.rendezvous, err = derive(LabelRendezvous)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out.identity = ed25519.NewKeyFromSeed(id[:])
	if out.age, err = hybridIdentityFromSeed(ageSeed); err != nil {
		return nil, err
	}
	return &out, nil
}

// hybridIdentityFromSeed makes an age ML-KEM-768+X25519 identity from its
// 32-byte seed through its Bech32 form, the only constructor age exports.
func hybridIdentityFromSeed(seed [32]byte) (*age.HybridIdentity, error) {
	s, err := bech32.EncodeFromBase256("age-secret-key-pq-", seed[:])
	if err != nil {
		return nil, fmt.Errorf("encode age identity: %w", err)
	}
	id, err := age.ParseHybridIdentity(strings.ToUpper(s))
	if err != nil {
		return nil, fmt.Errorf("make age identity: %w", err)
	}
	return id, nil
}

// Identity returns the Ed25519 identity key (the libp2p peer ID's key).
func (k *Keys) Identity() ed25519.PrivateKey { return k.identity }

// PublicKey returns the Ed25519 public identity key.
func (k *Keys) PublicKey() ed25519.PublicKey { return k.identity.Public().(ed25519.PublicKey) }

// LibP2PKey returns the identity key in libp2p's form, for the host.
func (k *Keys) LibP2PKey() p2pcrypto.PrivKey {
	priv, err := p2pcrypto.UnmarshalEd25519PrivateKey(k.identity)
	if err != nil {
		// A 64-byte ed25519 key always unmarshals; anything else is a bug.
		panic(fmt.Sprintf("crypto: libp2p key from ed25519: %v", err))
	}
	return priv
}

// PeerID returns the plug's libp2p peer ID.
func (k *Keys) PeerID() peer.ID {
	id, err := peer.IDFromPrivateKey(k.LibP2PKey())
	if err != nil {
		panic(fmt.Sprintf("crypto: peer ID from ed25519 key: %v", err))
	}
	return id
}

// AgeIdentity returns the owner's age identity, which decrypts packs and head
// records.
func (k *Keys) AgeIdentity() *age.HybridIdentity { return k.age }

// AgeRecipient returns the owner's age recipient (age1pq1…), to which packs and
// head records are encrypted.
func (k *Keys) AgeRecipient() *age.HybridRecipient { return k.age.Recipient() }

// ChunkIDKey returns the key of the keyed BLAKE3 chunk IDs.
func (k *Keys) ChunkIDKey() [32]byte { return k.chunkID }

// RendezvousKey returns the key under which friends announce, in the DHT, that
// they hold this owner's data.
func (k *Keys) RendezvousKey() [32]byte { return k.rendezvous }

// keysFile is the on-disk form of DIR/keys.
type keysFile struct {
	Version    int    `json:"version"`
	PeerID     string `json:"peer_id"`
	Identity   string `json:"identity"` // base64 Ed25519 seed
	Age        string `json:"age"`      // AGE-SECRET-KEY-PQ-1…
	ChunkID    string `json:"chunk_id"`
	Rendezvous string `json:"rendezvous"`
}

// ErrNoKeys is returned by LoadKeys when the file does not exist: the plug
// has not been initialized.
var ErrNoKeys = errors.New("no keys: this plug has not been initialized")

// SaveKeys writes the keys to path (mode 0600), durably and whole. It
// refuses to overwrite an existing file (the error wraps fs.ErrExist).
func (k *Keys) SaveKeys(path string) error {
	f := keysFile{
		Version:    1,
		PeerID:     k.PeerID().String(),
		Identity:   base64.StdEncoding.EncodeToString(k.identity.Seed()),
		Age:        k.age.String(),
		ChunkID:    hex.EncodeToString(k.chunkID[:]),
		Rendezvous: hex.EncodeToString(k.rendezvous[:]),
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	b = append(b, '\n')
	if err := durable.CreateFile(path, b, 0o600); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	return nil
}

// LoadKeys reads keys saved by SaveKeys. It returns an error wrapping
// ErrNoKeys when the file does not exist.
func LoadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load keys from %s: %w", path, ErrNoKeys)
	}
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	var f keysFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("load keys from %s: damaged file: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("load keys from %s: unknown version %d", path, f.Version)
	}
	var k Keys
	seed, err := base64.StdEncoding.DecodeString(f.Identity)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("load keys from %s: damaged identity key", path)
	}
	k.identity = ed25519.NewKeyFromSeed(seed)
	if k.age, err = age.ParseHybridIdentity(f.Age); err != nil {
		return nil, fmt.Errorf("load keys from %s: damaged age key: %w", path, err)
	}
	for _, h := range []struct {
		name string
		s    string
		dst  *[32]byte
	}{{"chunk-id", f.ChunkID, &k.chunkID}, {"rendezvous", f.Rendezvous, &k.rendezvous}} {
		b, err := hex.DecodeString(h.s)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("load keys from %s: damaged %s key", path, h.name)
		}
		copy(h.dst[:], b)
	}
	if got := k.PeerID().String(); f.PeerID != "" && got != f.PeerID {
		return nil, fmt.Errorf("load keys from %s: identity key gives peer ID %s, file says %s", path, got, f.PeerID)
	}
	return &k, nil
}
