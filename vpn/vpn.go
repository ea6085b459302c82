package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// Defaults of a Config.
const (
	DefaultName = "ipsx0"
	// DefaultMTU is the TUN's MTU. Raw IP never leaves the machine (every
	// flow ends in the userspace stack), so nothing on the path needs
	// small packets: the largest MTU lets the kernel hand over, and the
	// stack take, 64 KiB segments, which is most of a local TCP flow's
	// speed.
	DefaultMTU = 65520
	// DefaultUDPIdle is how long a UDP flow may be quiet before it is
	// forgotten (both ends of the tunnel keep the same), as a NAT does.
	DefaultUDPIdle = 2 * time.Minute
	// DefaultDNSIdle is the shorter idle of DNS flows (port 53): each
	// query of a stub resolver comes from a port of its own.
	DefaultDNSIdle = 10 * time.Second
	// DefaultConnectTimeout bounds opening one tunnel flow.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultFwMark marks the packets that stay off the TUN with a
	// default route ("ipsx" in ASCII); DefaultTable is the routing table
	// of the TUN's default route, DefaultRulePriority the priority of the
	// rule that sends unmarked traffic there (the suppress rule before it
	// takes one less).
	DefaultFwMark       = 0x69707378
	DefaultTable        = 26992
	DefaultRulePriority = 26992
)

// Default TUN addresses: 100.127.0.1 is in the shared address space
// (RFC 6598), where a LAN almost never is, and fd69:7073:7800::1 in a
// unique-local prefix of its own ("ipsx"). The resolver --dns points the
// system at is 100.127.0.53, on the TUN.
var (
	DefaultAddr4   = netip.MustParsePrefix("100.127.0.1/32")
	DefaultAddr6   = netip.MustParsePrefix("fd69:7073:7800::1/128")
	DefaultDNSAddr = netip.MustParseAddr("100.127.0.53")
)

// Config is what a VPN sets up. The zero value plus a StateFile is a TUN
// named ipsx0 carrying nothing until Routes or DefaultRoute say what to
// send through it.
type Config struct {
	// Name is the TUN device's name (default DefaultName).
	Name string
	// MTU of the device (default DefaultMTU).
	MTU int
	// Addr4 and Addr6 are the TUN's own addresses, the source of what the
	// system sends through it (default DefaultAddr4; no IPv6 unless
	// Addr6 is set or a route or the default route asks for it).
	Addr4, Addr6 netip.Prefix

	// Routes are the prefixes sent through the TUN (a split tunnel), in
	// the main routing table.
	Routes []netip.Prefix
	// DefaultRoute sends everything through the TUN except what Bypass
	// names, by policy routing as wg-quick does: a default route in a
	// table of its own, used by every packet without the fwmark; the
	// node's own traffic carries the mark (set by nftables from Bypass)
	// and follows the main table. Routes more specific than the main
	// table's default (the LAN) still win, as with wg-quick.
	DefaultRoute bool
	// Bypass is the node's own traffic, which must not enter the TUN.
	Bypass Bypass

	// DNS, if valid, is the resolver the system's DNS goes to, through
	// the tunnel: DNSAddr (default DefaultDNSAddr) is routed into the
	// TUN, ResolvConf (default /etc/resolv.conf) is rewritten to name it,
	// and queries to it leave the provider for DNS.
	DNS        netip.AddrPort
	DNSAddr    netip.Addr
	ResolvConf string

	// KillSwitch blocks what would leave outside the TUN while the
	// tunnel is down: every packet not for the TUN, loopback or the
	// node's own traffic (with DefaultRoute), or every packet for one of
	// Routes that is not going into the TUN (a split tunnel). It stays in
	// place if the process dies, until Recover or the next Run's end.
	KillSwitch bool

	// FwMark, Table and RulePriority are the policy routing's numbers
	// (defaults DefaultFwMark, DefaultTable, DefaultRulePriority).
	FwMark       uint32
	Table        int
	RulePriority int

	// UDPIdle, DNSIdle and ConnectTimeout are the flows' timeouts
	// (defaults DefaultUDPIdle, DefaultDNSIdle, DefaultConnectTimeout).
	UDPIdle, DNSIdle, ConnectTimeout time.Duration

	// StateFile records what Run changed in the system, before it
	// changes it, so that Recover can undo it after a crash. Required
	// unless NoSystem.
	StateFile string
	// NoSystem leaves the system alone: no address, route, rule,
	// firewall table or resolver file is touched (the caller configures
	// the device; tests do).
	NoSystem bool
}

// Bypass names the node's own traffic, which stays off the TUN with a
// default route and gets through the kill switch.
type Bypass struct {
	// Ports are the node's libp2p listen ports: its connections, dialled
	// or accepted, use them as their source (go-libp2p reuses the listen
	// port), over TCP and UDP (QUIC).
	Ports []uint16
	// Hosts are addresses the node reaches from other ports (its chain
	// RPC endpoint).
	Hosts []netip.Addr
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if !c.Addr4.IsValid() {
		c.Addr4 = DefaultAddr4
	}
	if c.DNS.IsValid() && !c.DNSAddr.IsValid() {
		c.DNSAddr = DefaultDNSAddr
	}
	if c.DNS.IsValid() && c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.FwMark == 0 {
		c.FwMark = DefaultFwMark
	}
	if c.Table == 0 {
		c.Table = DefaultTable
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	if c.UDPIdle == 0 {
		c.UDPIdle = DefaultUDPIdle
	}
	if c.DNSIdle == 0 {
		c.DNSIdle = DefaultDNSIdle
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if !c.Addr6.IsValid() && (c.DefaultRoute || c.hasRoute6()) {
		c.Addr6 = DefaultAddr6
	}
}

func (c *Config) hasRoute6() bool {
	for _, r := range c.Routes {
		if r.Addr().Is6() {
			return true
		}
	}
	return false
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("vpn: bad configuration")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	if len(c.Name) > 15 || !validIfName(c.Name) {
		return bad("device name %q (1 to 15 letters, digits, '-', '_', '.')", c.Name)
	}
	if c.MTU < 1280 || c.MTU > 65535 {
		return bad("MTU %d (1280 to 65535)", c.MTU)
	}
	if !c.Addr4.Addr().Is4() {
		return bad("IPv4 address %v", c.Addr4)
	}
	if c.Addr6.IsValid() && !c.Addr6.Addr().Is6() {
		return bad("IPv6 address %v", c.Addr6)
	}
	for _, r := range c.Routes {
		if !r.IsValid() || r != r.Masked() {
			return bad("route %v (a prefix without host bits)", r)
		}
	}
	if c.DNS.IsValid() && (c.DNS.Port() == 0 || !c.DNSAddr.IsValid()) {
		return bad("DNS server %v", c.DNS)
	}
	if c.UDPIdle < 0 || c.DNSIdle < 0 || c.ConnectTimeout < 0 {
		return bad("negative timeout")
	}
	if c.RulePriority < 2 || c.RulePriority > 32000 || c.Table <= 0 || c.Table == 253 || c.Table == 254 || c.Table == 255 {
		return bad("rule priority %d or table %d", c.RulePriority, c.Table)
	}
	if !c.NoSystem && c.StateFile == "" {
		return bad("no state file: nothing could undo the system changes after a crash")
	}
	return nil
}

func validIfName(s string) bool {
	if s == "" {
		return false
	}
	for _, ch := range s {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return false
		}
	}
	return true
}

// VPN is one TUN device with its stack, its flows and the system
// configuration that routes into it. New starts nothing; Run does it all
// and undoes it. Status is safe to call at any time, from any goroutine.
type VPN struct {
	cfg    Config
	dialer Dialer
	log    *slog.Logger
	newDev func(name string, mtu int) (tun.Device, error)

	keepKill atomic.Bool

	mu      sync.Mutex
	state   State
	since   time.Time
	err     error
	device  string
	fs      *flows
	ns      *netstack
	applied []string // what the system configuration did, for Status
}

// State is where a VPN is in its life.
type State string

const (
	StateNew      State = "new"
	StateStarting State = "starting"
	StateUp       State = "up"
	StateStopping State = "stopping"
	StateDown     State = "down"
	StateFailed   State = "failed"
)

// Option configures a VPN.
type Option func(*VPN)

// WithLogger sets the logger (default: discard); the VPN adds
// component=vpn.
func WithLogger(l *slog.Logger) Option { return func(v *VPN) { v.log = l } }

// WithDevice replaces tun.CreateTUN (tests hand in a device of their own).
func WithDevice(f func(name string, mtu int) (tun.Device, error)) Option {
	return func(v *VPN) { v.newDev = f }
}

// New validates cfg and returns the VPN; it starts nothing.
func New(cfg Config, d Dialer, opts ...Option) (*VPN, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: no dialer", ErrConfig)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	v := &VPN{cfg: cfg, dialer: d, log: slog.New(slog.DiscardHandler), newDev: tun.CreateTUN, state: StateNew}
	for _, o := range opts {
		o(v)
	}
	v.log = v.log.With("component", "vpn")
	return v, nil
}

// KeepKillSwitch says whether the end of Run leaves the kill switch armed
// (recorded in the state file for a later Recover) instead of removing it
// with the rest: for a node that stops with its VPN still up, as opposed
// to one taking its VPN down. It may be called at any time before Run
// ends; the default is to remove it.
func (v *VPN) KeepKillSwitch(keep bool) { v.keepKill.Store(keep) }

// Config returns the configuration with its defaults filled in.
func (v *VPN) Config() Config { return v.cfg }

// Run creates the device, configures the system to route into it, and
// serves its flows until ctx is done; then it undoes the system changes,
// closes every flow and the device, and returns. ready, if not nil, is
// called once everything is in place. It returns an error if the VPN
// could not come up (nothing it did is left behind) or if the device
// failed while up.
func (v *VPN) Run(ctx context.Context, ready func()) (err error) {
	v.setState(StateStarting, nil)
	defer func() {
		if err != nil {
			v.setState(StateFailed, err)
		} else {
			v.setState(StateDown, nil)
		}
	}()
	dev, err := v.newDev(v.cfg.Name, v.cfg.MTU)
	if err != nil {
		return fmt.Errorf("vpn: create TUN %s: %w", v.cfg.Name, err)
	}
	name, err := dev.Name()
	if err != nil {
		_ = dev.Close()
		return fmt.Errorf("vpn: TUN name: %w", err)
	}
	fs := &flows{live: map[*flow]struct{}{}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &handler{ctx: runCtx, dialer: v.dialer, fs: fs, cfg: &v.cfg, connect: v.cfg.ConnectTimeout, log: v.log}
	ns, err := newNetstack(dev, v.cfg.MTU, true, v.cfg.Addr6.IsValid(), h.tcpRequest, h.udpRequest)
	if err != nil {
		_ = dev.Close()
		return err
	}
	var sys *system
	if !v.cfg.NoSystem {
		if sys, err = applySystem(ctx, &v.cfg, name); err != nil {
			ns.close()
			_ = dev.Close()
			return err
		}
	}
	v.mu.Lock()
	v.fs, v.ns, v.device = fs, ns, name
	if sys != nil {
		v.applied = sys.describe()
	}
	v.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- ns.run(runCtx) }()
	v.setState(StateUp, nil)
	v.log.Info("vpn up", "device", name, "mtu", v.cfg.MTU, "routes", len(v.cfg.Routes), "default_route", v.cfg.DefaultRoute,
		"dns", v.cfg.DNS.IsValid(), "kill_switch", v.cfg.KillSwitch)
	if ready != nil {
		ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-done:
	}
	v.setState(StateStopping, nil)
	// The system first, so that nothing new is routed into a device that
	// is going away; then the flows, the device (which ends its reader),
	// and the stack.
	var undoErr error
	if sys != nil {
		if v.keepKill.Load() && v.cfg.KillSwitch {
			undoErr = sys.undoKeepKill()
		} else {
			undoErr = sys.undo(true)
		}
	}
	cancel()
	fs.close()
	_ = dev.Close()
	if runErr == nil {
		runErr = <-done
	}
	ns.close()
	v.log.Info("vpn down", "device", name)
	return errors.Join(runErr, undoErr)
}

func (v *VPN) setState(s State, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state, v.err, v.since = s, err, time.Now()
}

// Status is a VPN's state and flows.
type Status struct {
	State  State     `json:"state"`
	Since  time.Time `json:"since"`
	Error  string    `json:"error,omitempty"`
	Device string    `json:"device"`
	MTU    int       `json:"mtu"`
	Addrs  []string  `json:"addrs"`
	// Routes are what goes into the TUN ("default" with DefaultRoute).
	Routes     []string `json:"routes"`
	DNS        string   `json:"dns,omitempty"` // the resolver queries go to, through the tunnel
	KillSwitch bool     `json:"killSwitch,omitempty"`
	// System lists what was changed in the system to route into the TUN.
	System   []string `json:"system,omitempty"`
	Flows    []Flow   `json:"flows"`
	Counters Counters `json:"counters"`
}

// Status returns the VPN's state, its live flows and its totals.
func (v *VPN) Status() Status {
	v.mu.Lock()
	dev := v.device
	if dev == "" {
		dev = v.cfg.Name
	}
	st := Status{State: v.state, Since: v.since, Device: dev, MTU: v.cfg.MTU, KillSwitch: v.cfg.KillSwitch,
		System: append([]string(nil), v.applied...)}
	if v.err != nil {
		st.Error = v.err.Error()
	}
	fs, ns := v.fs, v.ns
	v.mu.Unlock()
	st.Addrs = []string{v.cfg.Addr4.String()}
	if v.cfg.Addr6.IsValid() {
		st.Addrs = append(st.Addrs, v.cfg.Addr6.String())
	}
	if v.cfg.DefaultRoute {
		st.Routes = append(st.Routes, "default")
	}
	for _, r := range v.cfg.Routes {
		st.Routes = append(st.Routes, r.String())
	}
	if v.cfg.DNS.IsValid() {
		st.DNS = v.cfg.DNS.String()
	}
	st.Flows = []Flow{}
	if fs != nil {
		st.Flows, st.Counters = fs.snapshot()
	}
	if ns != nil {
		st.Counters.DroppedICMP = ns.droppedICMP.Load()
	}
	return st
}
