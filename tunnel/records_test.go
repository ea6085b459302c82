package tunnel

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
)

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestChunkFillsTLSRecords forwards whole chunks into a stream as the node
// carries it, yamux over TLS over TCP, and counts the writes on the TCP
// connection: a chunk must go out as whole TLS records, two writes, not
// three (a 32 KiB chunk's frame left the 12 header bytes alone in a third
// record). (Only the test imports yamux; the package itself is transport
// agnostic.)
func TestChunkFillsTLSRecords(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const chunks = 64
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		sess, err := yamux.Server(tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}), yamux.DefaultConfig(), nil)
		if err != nil {
			received <- -1
			return
		}
		defer sess.Close()
		s, err := sess.AcceptStream()
		if err != nil {
			received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, s)
		received <- n
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	tc := tls.Client(cc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(tc, yamux.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	s, err := sess.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before := cc.writes.Load()
	src := bytes.NewReader(make([]byte, chunks*copyBufSize))
	if _, err := copyHalf(t.Context(), s, src, nil, false, nil); err != nil {
		t.Fatal(err)
	}
	if n := <-received; n != chunks*copyBufSize {
		t.Fatalf("received %d bytes, want %d", n, chunks*copyBufSize)
	}
	// Besides two records a chunk: the stream's opening and closing
	// frames, and a chunk split where the send window ran short (a few).
	// Three records a chunk is 3*chunks.
	writes := cc.writes.Load() - before
	if limit := int64(5 * chunks / 2); writes > limit {
		t.Fatalf("%d chunks of %d bytes took %d writes on the TCP connection, want at most %d (two TLS records a chunk)",
			chunks, copyBufSize, writes, limit)
	}
	t.Logf("%d chunks of %d bytes: %d writes", chunks, copyBufSize, writes)
}
