package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/agreement"
	"github.com/ipsx/ipsx/internal/crash"
	"github.com/ipsx/ipsx/node/deals"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The deal protocol on libp2p (/ipsx/deal/2.0.0): one exchange per stream.
// The opener writes one frame (a uvarint length, then an encoded
// agreement.Packet), half-closes, and reads one frame back; the other side
// answers only after the packet's effects are saved. Frames are at most
// agreement.MaxPacketSize bytes.

const dealIOTimeout = 10 * time.Second

// maxHintAddrs bounds the addresses a deal record keeps of a counterparty.
const maxHintAddrs = 8

func writeDealFrame(w io.Writer, b []byte) error {
	frame := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err := w.Write(append(frame, b...))
	return err
}

// readDealFrame reads one frame, refusing one over agreement.MaxPacketSize
// before reading its body.
func readDealFrame(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(r, agreement.MaxPacketSize+binary.MaxVarintLen64))
	size, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("deal frame length: %w", err)
	}
	if size > agreement.MaxPacketSize {
		return nil, fmt.Errorf("%w: deal frame of %d bytes, max %d", agreement.ErrMessageTooLarge, size, agreement.MaxPacketSize)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("deal frame: %w", err)
	}
	return buf, nil
}

// peerHint is what a deal record keeps of how a peer was reached: its ID
// and the addresses the peerstore knows (its listen addresses, from
// identify), the connection's own address first.
func (n *Node) peerHint(p peer.ID, c network.Conn) deals.Peer {
	h := deals.Peer{ID: p.String()}
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] && len(h.Addrs) < maxHintAddrs {
			seen[s] = true
			h.Addrs = append(h.Addrs, s)
		}
	}
	if c != nil && c.Stat().Direction == network.DirOutbound && !c.Stat().Limited {
		add(c.RemoteMultiaddr().String())
	}
	for _, a := range n.host.Peerstore().Addrs(p) {
		add(a.String())
	}
	return h
}

// dealTransport carries the driver's exchanges over libp2p.
type dealTransport struct{ n *Node }

func (t dealTransport) Exchange(ctx context.Context, to common.Address, hint deals.Peer, p agreement.Packet) (agreement.Packet, deals.Peer, error) {
	n := t.n
	var pid peer.ID
	if hint.ID != "" {
		pid, _ = n.usePeerHint(hint)
	}
	if pid == "" {
		var err error
		if pid, err = n.peerOf(to); err != nil {
			return agreement.Packet{}, deals.Peer{}, fmt.Errorf("node: no route to %s: %w", to.Hex(), err)
		}
	}
	b, err := agreement.EncodePacket(p)
	if err != nil {
		return agreement.Packet{}, deals.Peer{}, err
	}
	// Deal messages are small: a relayed connection to a provider behind
	// NAT carries them while hole punching gets a direct one for tunnels.
	ctx = network.WithAllowLimitedConn(ctx, "deal message")
	if err := n.connect(ctx, pid); err != nil {
		return agreement.Packet{}, deals.Peer{}, err
	}
	s, err := n.host.NewStream(ctx, pid, agreement.ProtocolID)
	if err != nil {
		return agreement.Packet{}, deals.Peer{}, fmt.Errorf("open deal stream to %s: %w", pid, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	} else {
		_ = s.SetDeadline(time.Now().Add(dealIOTimeout))
	}
	if err := writeDealFrame(s, b); err != nil {
		_ = s.Reset()
		return agreement.Packet{}, deals.Peer{}, fmt.Errorf("write deal packet to %s: %w", pid, err)
	}
	for _, m := range p.Msgs {
		crash.Point("deal.sent." + m.Msg.Type())
	}
	_ = s.CloseWrite()
	rb, err := readDealFrame(s)
	if err != nil {
		_ = s.Reset()
		return agreement.Packet{}, deals.Peer{}, fmt.Errorf("read deal answer from %s: %w", pid, err)
	}
	reply, err := agreement.DecodePacket(rb)
	if err != nil {
		_ = s.Reset()
		return agreement.Packet{}, deals.Peer{}, fmt.Errorf("deal answer from %s: %w", pid, err)
	}
	_ = s.Close()
	return reply, n.peerHint(pid, s.Conn()), nil
}

// serveDeal answers one exchange: decode, hand to the driver (which saves
// before it answers), write the answer.
func (n *Node) serveDeal(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(dealIOTimeout))
	from := s.Conn().RemotePeer()
	addr, err := AddressOf(from)
	if err != nil {
		_ = s.Reset()
		return
	}
	b, err := readDealFrame(s)
	if err != nil {
		n.log.Debug("bad deal frame", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	p, err := agreement.DecodePacket(b)
	if err != nil {
		n.log.Debug("bad deal packet", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	n.learnPeer(addr, from)
	ctx, cancel := context.WithTimeout(n.runCtx, dealIOTimeout)
	defer cancel()
	reply, err := n.deals.Receive(ctx, addr, n.peerHint(from, s.Conn()), p)
	if err != nil {
		n.log.Warn("deal packet not taken", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	rb, err := agreement.EncodePacket(reply)
	if err == nil {
		err = writeDealFrame(s, rb)
	}
	if err != nil {
		n.log.Debug("deal answer", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// watchDealPeers tells the driver when a counterparty connects, so that
// open deals with it are synced at once, and brings back the routes of
// deals set aside because it was unreachable.
func (n *Node) watchDealPeers() func() {
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if a, err := AddressOf(c.RemotePeer()); err == nil {
			n.deals.PeerConnected(a)
			n.providerBack(a)
		}
	}}
	n.host.Network().Notify(nb)
	return func() { n.host.Network().StopNotify(nb) }
}

func isNotFound(err error) bool { return errors.Is(err, ethereum.NotFound) }
