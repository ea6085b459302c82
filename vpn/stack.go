package vpn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The userspace network stack: a gVisor tcpip stack whose one NIC is the
// TUN device. The NIC is promiscuous (it takes packets for every address,
// as the far ends of all the flows the TUN carries) and spoofing (it
// answers from those addresses), and every TCP SYN and every new UDP
// 4-tuple goes to a forwarder: the stack terminates the flow, the VPN
// maps it onto a tunnel flow. Nothing but TCP and UDP is served: ICMP
// from the TUN is dropped before the stack sees it, since gVisor would
// otherwise answer a ping to any address itself, and the exit carries no
// ICMP to ask the real host.

const nicID tcpip.NICID = 1

// tunOffset is the headroom before each packet in the device buffers:
// wireguard-go's Linux TUN writes its virtio-net header there.
const tunOffset = 16

// netstack is the stack over one device.
type netstack struct {
	dev tun.Device
	ep  *channel.Endpoint
	s   *stack.Stack
	mtu int

	droppedICMP atomic.Uint64
	droppedOut  atomic.Uint64
}

// stackOptions are the transport settings: SACK, a window large enough
// for a fast local path, and Nagle off (the far side of each flow is a
// tunnel stream, which batches on its own).
func setStackOptions(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 8 << 20}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	nodelay := tcpip.TCPDelayEnabled(false)
	cc := tcpip.CongestionControlOption("cubic")
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &rcv, &snd, &moderate, &nodelay, &cc} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("vpn: stack option %T: %v", o, err)
		}
	}
	return nil
}

// newNetstack builds the stack over dev, handing TCP connection requests
// to onTCP (called in a goroutine of its own per SYN) and new UDP 4-tuples
// to onUDP (called on the packet path: it must not block). v4 and v6 say
// which families the TUN carries.
func newNetstack(dev tun.Device, mtu int, v4, v6 bool, onTCP func(*tcp.ForwarderRequest), onUDP func(*udp.ForwarderRequest)) (*netstack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := setStackOptions(s); err != nil {
		s.Close()
		return nil, err
	}
	ep := channel.New(4096, uint32(mtu), "")
	if err := s.CreateNIC(nicID, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("vpn: create NIC: %v", err)
	}
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		s.Close()
		return nil, fmt.Errorf("vpn: promiscuous NIC: %v", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		s.Close()
		return nil, fmt.Errorf("vpn: spoofing NIC: %v", err)
	}
	if v4 {
		s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	}
	if v6 {
		s.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, maxConnecting, onTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, onUDP).HandlePacket)
	return &netstack{dev: dev, ep: ep, s: s, mtu: mtu}, nil
}

// maxConnecting bounds the TCP connections being set up at once (SYNs
// whose tunnel flow is still opening); later SYNs are dropped and
// retransmitted by the client.
const maxConnecting = 1024

// run moves packets between the device and the stack until ctx is done or
// the device fails, and joins its goroutines. It does not close the
// device.
func (n *netstack) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := n.outbound(ctx); err != nil {
			cancel(err)
		}
	})
	if events := n.dev.Events(); events != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-events:
					if !ok {
						return
					}
				}
			}
		})
	}
	err := n.inbound(ctx)
	if err != nil {
		cancel(err)
	}
	// inbound returns on a read error; the device's close is what ends a
	// blocked read, so the caller closes it when ctx ends.
	cancel(nil)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// inbound reads packets from the device into the stack.
func (n *netstack) inbound(ctx context.Context) error {
	batch := max(n.dev.BatchSize(), 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, tunOffset+max(n.mtu, 65535))
	}
	sizes := make([]int, batch)
	for {
		k, err := n.dev.Read(bufs, sizes, tunOffset)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, tun.ErrTooManySegments) {
				continue
			}
			return fmt.Errorf("vpn: read TUN: %w", err)
		}
		for i := range k {
			n.deliver(bufs[i][tunOffset : tunOffset+sizes[i]])
		}
	}
}

// deliver hands one IP packet to the stack.
func (n *netstack) deliver(p []byte) {
	if len(p) == 0 {
		return
	}
	var proto tcpip.NetworkProtocolNumber
	switch p[0] >> 4 {
	case 4:
		if len(p) < header.IPv4MinimumSize || header.IPv4(p).Protocol() == uint8(header.ICMPv4ProtocolNumber) {
			n.droppedICMP.Add(1)
			return
		}
		proto = header.IPv4ProtocolNumber
	case 6:
		if len(p) < header.IPv6MinimumSize || header.IPv6(p).NextHeader() == uint8(header.ICMPv6ProtocolNumber) {
			n.droppedICMP.Add(1)
			return
		}
		proto = header.IPv6ProtocolNumber
	default:
		return
	}
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
	n.ep.InjectInbound(proto, pkb)
	pkb.DecRef()
}

// outbound writes the stack's packets to the device, a batch at a time.
func (n *netstack) outbound(ctx context.Context) error {
	batch := max(n.dev.BatchSize(), 1)
	bufs := make([][]byte, 0, batch)
	store := make([][]byte, batch)
	for i := range store {
		store[i] = make([]byte, tunOffset+max(n.mtu, 65535))
	}
	for {
		pkt := n.ep.ReadContext(ctx)
		if pkt == nil {
			return nil // ctx done
		}
		bufs = bufs[:0]
		for pkt != nil {
			b := store[len(bufs)]
			k := tunOffset
			for _, s := range pkt.AsSlices() {
				k += copy(b[k:], s)
			}
			pkt.DecRef()
			bufs = append(bufs, b[:k])
			if len(bufs) == batch {
				break
			}
			pkt = n.ep.Read()
		}
		if _, err := n.dev.Write(bufs, tunOffset); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return nil
			}
			// A packet the kernel refused (a bad checksum would be a bug)
			// is lost like any packet; the flow's TCP retransmits.
			n.droppedOut.Add(uint64(len(bufs)))
		}
	}
}

// close tears the stack down; the device is the caller's.
func (n *netstack) close() {
	n.s.Close()
	n.ep.Close()
	n.s.Wait()
}

// addrOf converts a stack address.
func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}
