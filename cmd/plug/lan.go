package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/plug-net/plug/httpui"
	"github.com/plug-net/plug/p2p/lanname"
	"github.com/plug-net/plug/store/durable"
)

// The web UI on the local network (--lan-ui): the same pages and API as
// --api, over HTTPS with a certificate the plug makes itself, at
// https://NAME.local:PORT/ (multicast DNS). A board in a wall socket has no
// screen: this is how its owner reaches it the first time.

// uiCert returns the plug's own certificate for the web UI, made on the
// first start (ECDSA P-256, 20 years, for NAME.local and localhost) and
// kept in DIR/ui-cert.pem and DIR/ui-key.pem (0600), so that its
// fingerprint, which the owner checks once in the browser, stays the same.
func uiCert(dir dataDir, name string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(dir.uiCert(), dir.uiKey())
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("load the web UI's certificate (delete %s and %s to make a new one): %w", dir.uiCert(), dir.uiKey(), err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: lanname.Host(name), Organization: []string{"plug"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{lanname.Host(name), "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("make the web UI's certificate: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is never left behind.
	if err := durable.WriteFile(dir.uiKey(), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("keep the web UI's key: %w", err)
	}
	if err := durable.WriteFile(dir.uiCert(), certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("keep the web UI's certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// fingerprint is a certificate's SHA-256 as browsers show it: AB:CD:….
func fingerprint(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Certificate[0])
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// lanUI is the web UI on the local network and the name that leads to it.
type lanUI struct {
	srv         *http.Server
	errc        chan error
	port        string
	fingerprint string
	names       *lanname.Responder // nil: mDNS could not start (logged)

	mu   sync.Mutex
	host string // NAME.local now
}

// url is where the owner opens the UI on the network.
func (l *lanUI) url() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "https://" + net.JoinHostPort(l.host, l.port) + "/"
}

func (l *lanUI) hostName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.host
}

// serveLAN listens on --lan-ui with TLS and answers for NAME.local.
func (a *app) serveLAN(ui *httpui.Server, baseCtx context.Context) (*lanUI, error) {
	log := a.log.With("component", "daemon")
	cert, err := uiCert(a.cfg.dir, a.name())
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a.cfg.lanUI)
	if err != nil {
		log.Error("could not open the web UI on the network", "addr", a.cfg.lanUI, "err", err)
		return nil, fmt.Errorf("listen on --lan-ui %s: %w (is another program using that port?)", a.cfg.lanUI, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	l := &lanUI{errc: make(chan error, 1), port: port, fingerprint: fingerprint(cert), host: lanname.Host(a.name())}
	l.srv = &http.Server{
		Handler:           ui.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	go func() { l.errc <- l.srv.ServeTLS(ln, "", "") }()
	ui.AllowHost(l.host)
	if l.names, err = lanname.Start(a.name()); err != nil {
		// The UI still answers at the plug's address; say so and go on.
		log.Warn("could not answer for the plug's name on the network (mDNS): open the web UI at the plug's IP address", "name", l.host, "err", err)
	}
	return l, nil
}

// rename follows a new name of the plug: NAME.local answers too (the old
// name goes on answering until the plug restarts).
func (l *lanUI) rename(ui *httpui.Server, name string) error {
	h := lanname.Host(name)
	ui.AllowHost(h)
	l.mu.Lock()
	l.host = h
	l.mu.Unlock()
	if l.names == nil {
		return nil
	}
	return l.names.Add(name)
}

func (l *lanUI) shutdown(ctx context.Context) error {
	if l.names != nil {
		_ = l.names.Close() // only sockets
	}
	return l.srv.Shutdown(ctx)
}

// name is the plug's name now.
func (a *app) name() string {
	a.nameMu.Lock()
	defer a.nameMu.Unlock()
	return a.cfg.name
}

// Rename gives the plug a new name, from the setup page: kept in DIR/name
// for the next start (where --name, if given, wins), told to friends paired
// from now on, on new posts and snapshots, and on the network as NAME.local.
func (a *app) Rename(_ context.Context, name string) error {
	if err := durable.WriteFile(a.cfg.dir.nameFile(), []byte(name+"\n"), 0o644); err != nil {
		return fmt.Errorf("keep the name: %w", err)
	}
	a.nameMu.Lock()
	old := a.cfg.name
	a.cfg.name = name
	a.nameMu.Unlock()
	a.node.SetName(name)
	a.social.SetName(name)
	a.repo.SetHost(name)
	if a.lan != nil {
		if err := a.lan.rename(a.ui, name); err != nil {
			a.log.Warn("could not answer for the new name on the network (mDNS)", "name", lanname.Host(name), "err", err)
		}
	}
	if old != name {
		a.log.Info("plug renamed", "name", name, "was", old)
	}
	return nil
}

// savedName reads the name chosen in the setup, or "".
func savedName(dir dataDir) string {
	b, err := os.ReadFile(dir.nameFile())
	if err != nil {
		return ""
	}
	n := strings.TrimSpace(string(b))
	if len(n) > 256 {
		return ""
	}
	return n
}
