package head

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/p2p/headrec"
	"github.com/plug-net/plug/store/catalog"
	"github.com/plug-net/plug/store/data"
)

// Format is the version of the document's layout.
const Format = 1

// maxPlain bounds a decompressed document.
const maxPlain = 256 << 20

// Doc is the plaintext of a head record: the owner's catalog root. Its JSON
// is binding (DESIGN.md, "Head record").
type Doc struct {
	Format    int                  `json:"format"`
	Version   uint64               `json:"version"`
	Time      time.Time            `json:"time"`
	Owner     string               `json:"owner"`
	M         int                  `json:"m"`
	Friends   []Friend             `json:"friends"`
	Snapshots []data.Snapshot      `json:"snapshots"`
	Packs     []catalog.PackRecord `json:"packs"`
	// Index names the index segments that rebuild the chunk index.
	Index []BlobRef `json:"index"`
	// State names blobs of the plug's own state (posts, settings), kept by
	// whoever owns it; opaque here.
	State []BlobRef `json:"state,omitempty"`
	// Extra holds small named settings restored with the plug.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Friend is a friend as the head record keeps it, so that a recovered plug
// knows its friends again. Its JSON keys are those the record has always
// had; it changes only with the format, never with the friend book.
type Friend struct {
	PeerID     string    `json:"peer_id"`
	Name       string    `json:"name"`
	Addrs      []string  `json:"addrs,omitempty"`
	QuotaGiven int64     `json:"quota_given"`
	QuotaTaken int64     `json:"quota_taken"`
	UsedTaken  int64     `json:"used_taken"`
	Rendezvous string    `json:"rendezvous"` // hex
	Added      time.Time `json:"added"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	// House is where the friend's plug lives as the owner's plug sees it
	// (p2p.Node.House): friends with the same one are lost together.
	House string `json:"house,omitempty"`
}

// BlobRef names a blob and where it is.
type BlobRef struct {
	ID          data.ID          `json:"id"`
	Pack        data.ID          `json:"pack"`
	Compression data.Compression `json:"comp,omitempty"`
	Offset      uint32           `json:"off"`
	Length      uint32           `json:"len"`
	RawLength   uint32           `json:"raw"`
}

// Seal encrypts doc to its owner (zstd of its JSON, then age) and signs it
// into an envelope that friends check and keep.
func Seal(doc Doc, keys *crypto.Keys) ([]byte, error) {
	plain, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	z := zw.EncodeAll(plain, nil)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	var ct bytes.Buffer
	aw, err := crypto.Encrypt(&ct, keys.AgeRecipient())
	if err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	if _, err := aw.Write(z); err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("seal head record: %w", err)
	}
	return headrec.Seal(keys.Identity(), keys.PeerID(), doc.Version, doc.Time, ct.Bytes())
}

// Open checks an envelope from a friend (signed by the owner of keys) and
// decrypts it. Every error wraps headrec.ErrBad.
func Open(env []byte, keys *crypto.Keys) (Doc, error) {
	var doc Doc
	h, err := headrec.Open(env)
	if err != nil {
		return doc, err
	}
	if h.Owner != keys.PeerID() {
		return doc, fmt.Errorf("%w: signed by %s, not by this plug", headrec.ErrBad, h.Owner)
	}
	ar, err := crypto.Decrypt(bytes.NewReader(h.Ciphertext), keys.AgeIdentity())
	if err != nil {
		return doc, fmt.Errorf("%w: %v", headrec.ErrBad, err)
	}
	z, err := io.ReadAll(io.LimitReader(ar, headrec.MaxCiphertext+1))
	if err != nil {
		return doc, fmt.Errorf("%w: %v", headrec.ErrBad, err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxPlain), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return doc, err
	}
	defer dec.Close()
	plain, err := dec.DecodeAll(z, nil)
	if err != nil {
		return doc, fmt.Errorf("%w: %v", headrec.ErrBad, err)
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		return doc, fmt.Errorf("%w: %v", headrec.ErrBad, err)
	}
	if doc.Version != h.Version || doc.Owner != h.Owner.String() || doc.Format != Format {
		return doc, fmt.Errorf("%w: contents do not match the envelope (version %d/%d)", headrec.ErrBad, doc.Version, h.Version)
	}
	for _, p := range doc.Packs {
		if err := p.Shape.Validate(); err != nil || p.Shape.PackID() != p.ID || len(p.Holders) != p.Shape.K+p.Shape.M {
			return doc, fmt.Errorf("%w: pack %s does not match its shards", headrec.ErrBad, p.ID.Short())
		}
	}
	return doc, nil
}

// FindPack returns the pack of doc with the given ID.
func (doc Doc) FindPack(id data.ID) (catalog.PackRecord, bool) {
	for _, p := range doc.Packs {
		if p.ID == id {
			return p, true
		}
	}
	return catalog.PackRecord{}, false
}
