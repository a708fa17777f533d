package harvest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// This file walks big JSON documents token by token, so that an export is
// decoded one entry at a time and memory stays bounded by the largest entry.

// jsonError explains a decoding error of the document what: where it
// happened and what to do about it.
func jsonError(what string, dec *json.Decoder, err error) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return fmt.Errorf("read %s: %w", what, err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("read %s: the file ends in the middle of the JSON, after byte %d: it is incomplete; download or unpack the export again: %w",
			what, dec.InputOffset(), io.ErrUnexpectedEOF)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("read %s: the JSON is broken near byte %d (%v): the file is damaged or not an export", what, syn.Offset, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// expectDelim reads the next token and checks that it is want.
func expectDelim(dec *json.Decoder, what string, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(what, dec, err)
	}
	if tok != want {
		return fmt.Errorf("read %s: expected %v, found %s: %w", what, want, describeToken(tok), ErrNotExport)
	}
	return nil
}

// describeToken names a JSON token for an error message.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", v.String())
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("the string %q", v)
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v", v)
	}
}

// readKey reads the key of the next member of an object.
func readKey(dec *json.Decoder, what string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", jsonError(what, dec, err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("read %s: expected an object key, found %s", what, describeToken(tok))
	}
	return key, nil
}

// skipValue consumes the next value, refusing nesting deeper than
// maxNesting so that hostile input fails fast.
func skipValue(dec *json.Decoder, what string) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(what, dec, err)
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			if depth > maxNesting {
				return fmt.Errorf("read %s: JSON nested deeper than %d levels near byte %d: refusing it, no export looks like this",
					what, maxNesting, dec.InputOffset())
			}
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// decodeEntry decodes one entry of a stream into v. It reports whether the
// stream can go on: an entry of the wrong shape is consumed whole and is
// only that entry's problem (ok=true with err set); a syntax or read error
// breaks the stream (ok=false).
func decodeEntry(dec *json.Decoder, v any) (ok bool, err error) {
	err = dec.Decode(v)
	if err == nil {
		return true, nil
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return true, err
	}
	return false, err
}

// arrayItems walks the array that comes next, calling item with the decoder
// positioned at each element; item must consume exactly one value. A null
// counts as an empty array.
func arrayItems(dec *json.Decoder, what string, item func() error) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(what, dec, err)
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("read %s: expected an array, found %s: %w", what, describeToken(tok), ErrNotExport)
	}
	for dec.More() {
		if err := item(); err != nil {
			return err
		}
	}
	return expectDelim(dec, what, ']')
}
