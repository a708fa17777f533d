// Package crypto holds the plug's secrets and what is done with them: the
// 24-word BIP-39 recovery phrase, the HKDF derivation of every key from it,
// streaming age encryption and decryption (post-quantum hybrid recipient), and
// Ed25519 signatures with domain separation.
//
// A new plug given the same words derives the same keys and therefore is the
// same plug. The package never logs and never touches the network; it returns
// errors that name what is wrong.
package crypto
