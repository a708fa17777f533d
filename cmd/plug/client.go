package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// client talks to the running plug through its JSON API.
type client struct {
	dir   dataDir
	base  string
	token string
	http  *http.Client
}

// errNotRunning says no plug serves the data directory.
type errNotRunning struct{ dir dataDir }

func (e *errNotRunning) Error() string {
	return fmt.Sprintf("no plug is running on %s: start one with \"plug up --data %s\"", string(e.dir), string(e.dir))
}

// newClient finds the running plug of dir by DIR/api.addr and DIR/api.token.
func newClient(dir dataDir) (*client, error) {
	addr, err := os.ReadFile(dir.apiAddr())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &errNotRunning{dir}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir.apiAddr(), err)
	}
	tok, err := os.ReadFile(dir.apiToken())
	if err != nil {
		return nil, fmt.Errorf("read the API token: %w", err)
	}
	return &client{
		dir:   dir,
		base:  "http://" + strings.TrimSpace(string(addr)),
		token: strings.TrimSpace(string(tok)),
		http:  &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}},
	}, nil
}

// apiError is an error answered by the daemon.
type apiErr struct {
	status int
	msg    string
}

func (e *apiErr) Error() string { return e.msg }

// do sends a request and decodes the JSON answer into out (unless nil).
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer from the plug: %w", method, path, err)
	}
	return nil
}

// send sends a request; a non-2xx answer becomes an error carrying the
// daemon's message.
func (c *client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = strings.NewReader(string(b))
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.sendReq(req)
}

// sendReq sends a request with the token; a non-2xx answer becomes an error
// carrying the daemon's message.
func (c *client) sendReq(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &errNotRunning{c.dir}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("talk to the plug at %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		defer closeBody(resp.Body)
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return nil, &apiErr{status: resp.StatusCode, msg: e.Error}
	}
	return resp, nil
}

// clientFor parses nothing but resolves --data and connects.
func (f *flags) client(std stdio) (*client, error) {
	dir, err := f.dataDir(std)
	if err != nil {
		return nil, err
	}
	return newClient(dataDir(dir))
}

// printJSON writes v as indented JSON on stdout.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// closeBody reads what is left of an answer and closes it, so that the
// connection is reused. Its errors change nothing: the answer was read.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 1<<20))
	_ = b.Close()
}
