package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/plug-net/plug/crypto"
	"github.com/plug-net/plug/store/durable"
)

func cmdInit(ctx context.Context, std stdio, args []string) error {
	f := newFlags("init", std)
	recov := f.Bool("recover", false, "recover an existing plug: read its 24 words from stdin")
	jsonOut := f.Bool("json", false, `print {"peer_id", "recovery_phrase"} as JSON`)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	dir, err := f.dataDir(std)
	if err != nil {
		return err
	}
	var phrase crypto.Phrase
	if *recov {
		if phrase, err = readPhrase(std); err != nil {
			return err
		}
	}
	keys, phrase, err := initialize(dataDir(dir), phrase)
	if err != nil {
		return err
	}
	if *jsonOut {
		return json.NewEncoder(std.out).Encode(map[string]string{
			"peer_id":         keys.PeerID().String(),
			"recovery_phrase": phrase.String(),
		})
	}
	if *recov {
		std.out.printf("Recovered plug %s in %s.\n", keys.PeerID(), dir)
		std.out.printf("Start it with: plug up --data %s --bootstrap MULTIADDR (any plug or DHT peer); it will find the friends that hold its data.\n", dir)
		return nil
	}
	printPhrase(std, keys, phrase, dir)
	return nil
}

// printPhrase shows the recovery phrase once: the words alone on one line of
// stdout, what to do with them on stderr.
func printPhrase(std stdio, keys *crypto.Keys, phrase crypto.Phrase, dir string) {
	std.err.printf("New plug %s in %s.\n", keys.PeerID(), dir)
	std.err.println("Write these 24 words down on paper and keep them somewhere safe: they are the only way to")
	std.err.println("bring this plug and its backups back if it is lost. They are stored nowhere and not shown again.")
	std.out.println(phrase.String())
}

// keepPhrase is printPhrase for a plug run as a service, whose output goes
// to a log (the journal): the words go to DIR/recovery-words, readable by
// the plug's user only, and the log says where they are and what to do.
func keepPhrase(std stdio, keys *crypto.Keys, phrase crypto.Phrase, dir dataDir) error {
	text := "The 24 recovery words of plug " + keys.PeerID().String() + ". Write them down on paper and keep them\n" +
		"somewhere safe: they are the only way to bring this plug and its backups back if it is lost.\n" +
		"Then delete this file.\n\n" + phrase.String() + "\n"
	if err := durable.WriteFile(dir.recoveryWords(), []byte(text), 0o600); err != nil {
		return fmt.Errorf("keep the recovery words: %w", err)
	}
	std.err.printf("New plug %s in %s.\n", keys.PeerID(), dir)
	std.err.printf("Its 24 recovery words are in %s (readable by its user and root only): copy them onto paper, keep them safe, then delete that file.\n", dir.recoveryWords())
	return nil
}

// readPhrase reads a recovery phrase from stdin: one line from a terminal
// (after a prompt), everything (at most 4 KiB) from a pipe.
func readPhrase(std stdio) (crypto.Phrase, error) {
	var text string
	if f, ok := std.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		std.err.print("Type your 24 recovery words, then Enter: ")
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return crypto.Phrase{}, fmt.Errorf("read recovery phrase: %w", err)
		}
		text = line
	} else {
		b, err := readAllLimit(std.in, 4096)
		if err != nil {
			return crypto.Phrase{}, fmt.Errorf("read recovery phrase from stdin: %w", err)
		}
		text = string(b)
	}
	p, err := crypto.ParsePhrase(text)
	if err != nil {
		return crypto.Phrase{}, fmt.Errorf("%w; nothing was written", err)
	}
	return p, nil
}

func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}

// initialize creates the data directory and the keys from phrase (a new
// phrase when it is zero). It refuses a directory that already holds keys.
func initialize(dir dataDir, phrase crypto.Phrase) (*crypto.Keys, crypto.Phrase, error) {
	if existing, err := crypto.LoadKeys(dir.keys()); err == nil {
		return nil, phrase, fmt.Errorf("%s already holds plug %s: to make a new one, use another --data directory", dir, existing.PeerID())
	} else if !errors.Is(err, crypto.ErrNoKeys) {
		return nil, phrase, err
	}
	recovering := phrase.String() != ""
	if !recovering {
		var err error
		if phrase, err = crypto.NewPhrase(); err != nil {
			return nil, phrase, err
		}
	}
	keys, err := crypto.DeriveKeys(phrase)
	if err != nil {
		return nil, phrase, err
	}
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		return nil, phrase, fmt.Errorf("create data directory: %w", err)
	}
	if recovering {
		// Written before the keys: a plug with these keys always knows it
		// has a backup to find.
		if err := durable.WriteFile(dir.recovering(), []byte("this plug was made from its recovery words and looks for its backup\n"), 0o600); err != nil {
			return nil, phrase, err
		}
	}
	if err := keys.SaveKeys(dir.keys()); err != nil {
		return nil, phrase, err
	}
	return keys, phrase, nil
}
