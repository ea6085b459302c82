package sdk

import (
	"context"
	"time"
)

// VPNParams is the body of POST /v1/vpn/up: how the requester's node
// brings its VPN up (a TUN device in the node's process, whose flows go
// through the node's deals).
type VPNParams struct {
	// Routes choose the deals the VPN's flows go through, in the proxy
	// username grammar ("country-DE", "country-US-city-newyork"), in order
	// of preference; none: any active deal.
	Routes []string `json:"routes,omitempty"`
	// Prefixes are what the system sends into the TUN (a split tunnel),
	// e.g. "203.0.113.0/24".
	Prefixes []string `json:"prefixes,omitempty"`
	// DefaultRoute sends everything into the TUN but the node's own
	// traffic.
	DefaultRoute bool `json:"defaultRoute,omitempty"`
	// DNS points the system's resolver at the TUN; queries leave from the
	// provider for DNSServer (ip or ip:port, default 1.1.1.1:53).
	DNS       bool   `json:"dns,omitempty"`
	DNSServer string `json:"dnsServer,omitempty"`
	// KillSwitch blocks what would leave outside the TUN while the
	// tunnel is down, a crash of the node included, until VPN down.
	KillSwitch bool `json:"killSwitch,omitempty"`
	// Device and MTU of the TUN (defaults ipsx0 and 65520).
	Device string `json:"device,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
}

// VPNStatus is the answer of GET /v1/vpn and of up and down.
type VPNStatus struct {
	// State is "down", "starting", "up", "stopping" or "failed".
	State  string    `json:"state"`
	Since  time.Time `json:"since,omitzero"`
	Error  string    `json:"error,omitempty"`
	Device string    `json:"device,omitempty"`
	MTU    int       `json:"mtu,omitempty"`
	Addrs  []string  `json:"addrs,omitempty"`
	// Prefixes are what goes into the TUN ("default" for a default route).
	Prefixes []string `json:"prefixes,omitempty"`
	// Routes choose the deals; Deal is the one new flows go through now,
	// Provider its provider's address.
	Routes   []string `json:"routes,omitempty"`
	Deal     string   `json:"deal,omitempty"`
	Provider string   `json:"provider,omitempty"`
	DNS      string   `json:"dns,omitempty"`
	// KillSwitch is on while up; KillSwitchArmed says it is blocking
	// with the VPN down (after a crash or a node restart).
	KillSwitch      bool        `json:"killSwitch,omitempty"`
	KillSwitchArmed bool        `json:"killSwitchArmed,omitempty"`
	System          []string    `json:"system,omitempty"`
	Flows           []VPNFlow   `json:"flows"`
	Counters        VPNCounters `json:"counters"`
}

// VPNFlow is one live flow of the TUN.
type VPNFlow struct {
	Proto    string    `json:"proto"`
	Src      string    `json:"src"`
	Dst      string    `json:"dst"`
	Target   string    `json:"target"`
	Deal     string    `json:"deal,omitempty"`
	Up       uint64    `json:"up"`
	Down     uint64    `json:"down"`
	Started  time.Time `json:"started"`
	Reopened int       `json:"reopened,omitempty"`
}

// VPNCounters are the VPN's totals since it came up.
type VPNCounters struct {
	TCPFlows    uint64 `json:"tcpFlows"`
	UDPFlows    uint64 `json:"udpFlows"`
	Refused     uint64 `json:"refused"`
	Failed      uint64 `json:"failed"`
	Up          uint64 `json:"up"`
	Down        uint64 `json:"down"`
	DroppedICMP uint64 `json:"droppedIcmp"`
	// Moves counts the times new flows moved to another deal because the
	// current one's provider could not be reached.
	Moves uint64 `json:"moves"`
}

// VPN returns the VPN's status.
func (c *Client) VPN(ctx context.Context) (*VPNStatus, error) {
	var s VPNStatus
	return &s, c.call(ctx, "GET", "/v1/vpn", nil, nil, &s)
}

// VPNUp brings the VPN up and returns its status once it is up.
func (c *Client) VPNUp(ctx context.Context, p VPNParams) (*VPNStatus, error) {
	var s VPNStatus
	return &s, c.call(ctx, "POST", "/v1/vpn/up", nil, p, &s)
}

// VPNDown takes the VPN down (and disarms a kill switch left armed) and
// returns its status.
func (c *Client) VPNDown(ctx context.Context) (*VPNStatus, error) {
	var s VPNStatus
	return &s, c.call(ctx, "POST", "/v1/vpn/down", nil, nil, &s)
}
