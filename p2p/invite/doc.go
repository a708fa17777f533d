// Package invite makes and reads the one-time invite codes by which a plug's
// owner pairs with a friend, and draws them as QR codes for a terminal and as
// PNG images. It does no networking, no storage and no logging: redeeming an
// invite over /plug/pair and remembering which invites are open is the job
// of package p2p.
//
// # Code format, version 1
//
// An invite code is one line of text: the prefix "PLUG1", then the RFC 4648
// base32 encoding (alphabet A–Z and 2–7, upper case, no padding) of the
// payload followed by its checksum. Every character is in the QR code
// alphanumeric set, so the code makes a small QR code, and it survives
// being read aloud or typed.
//
// The payload (integers big-endian):
//
//	size   field
//	1      version: 1
//	1      n: length of the inviter's peer ID, 1 to 255
//	n      the inviter's libp2p peer ID (the bytes of a peer.ID: a multihash)
//	16     secret: random, used once
//	4      expiry: unix seconds, unsigned
//	1      c: number of addresses, 0 to 8
//	c ×    one length byte L (1 to 255), then L bytes: a multiaddr in binary form
//
// The checksum is the first 4 bytes of the BLAKE3-256 hash of the payload.
//
// Limits: the payload is at most 600 bytes, so a code is at most 972
// characters; Parse refuses text longer than 1,024 bytes (separators
// included) before it decodes anything.
//
// Reading is strict about content and lenient about form. Letters may be
// lower case; white space, line breaks, dashes and zero-width spaces that a
// person or a chat program adds anywhere are ignored. Nothing else is
// corrected: in particular 0, 1 and 8 are never taken for O, I and B (the
// error message suggests it). Every code has exactly one spelling: the
// unused low bits of the last character must be zero, each address must be
// in the canonical binary form of its multiaddr, and nothing may follow the
// last address.
//
// Parse checks the prefix, then the characters and the checksum, then the
// version byte, then the structure. Each error it returns wraps one of four
// sentinels (test with errors.Is) in a message for a person:
//
//   - ErrNotInvite: the text is empty, longer than 1,024 bytes, or does not
//     start with "PLUG" and a digit (nor "PLUGI", "PLUGL"): some other text
//     or QR code.
//   - ErrVersion: the prefix is "PLUG2" to "PLUG9", or the checksum holds
//     and the version byte is above 1: a newer plug made it.
//   - ErrMistyped: the text starts "PLUGI" or "PLUGL" (for "PLUG1"), is
//     "PLUG" and nothing, has a character outside the alphabet, a length
//     that no base32 text has, non-zero unused bits, too few bytes to hold a
//     checksum, or a checksum that does not match: a person copied it wrong.
//   - ErrMalformed: the checksum holds but the payload breaks the format
//     (version 0, a length past the end, an invalid peer ID or multiaddr,
//     an empty address, more than 8 addresses, bytes after the last
//     address, more than 600 bytes): a faulty program made it.
//
// Example: inviter 12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5,
// secret 00 01 02 … 0f, expiring at 2030-01-01T00:00:00Z, one address
// /ip4/127.0.0.1/tcp/4001 (124 characters):
//
//	PLUG1AETAAJAIAEJCBCUI4POXICPRSX6VFWZNHS5F24WKM4E36HMUCIN7G5EIAG2A6324AAAQEAYEAUDAOCAJBIFQYDIOB5YNXWEAAEEAI7YAAAAQMD5BSIIBFGI
package invite
