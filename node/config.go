package node

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/tunnel"
	ma "github.com/multiformats/go-multiaddr"
)

// Config is the node's configuration, read from <datadir>/config.json. Its
// JSON keys are the CLI's flag names, so a flag, an IPSX_* variable and a
// config key are the same setting.
type Config struct {
	// Listen are libp2p listen multiaddrs (TCP and QUIC by default).
	Listen []string `json:"listen,omitempty"`
	// API is the loopback host:port of the local REST API.
	API string `json:"api,omitempty"`
	// Bootstrap peers, as /ip4/.../p2p/<id> multiaddrs.
	Bootstrap []string `json:"bootstrap,omitempty"`
	// Countries are the shards subscribed to beyond those the node's own
	// orders live in.
	Countries []string `json:"countries,omitempty"`
	// ChainID and Escrow form the EIP-712 domain of every signature.
	ChainID uint64 `json:"chain-id,omitempty"`
	Escrow  string `json:"escrow,omitempty"`
	// ChainRPC is the Ethereum JSON-RPC endpoint of the escrow's chain
	// (e.g. `ipsx devchain`, geth --dev). Empty: no chain; the wallet is
	// unavailable and order balances go unchecked.
	ChainRPC string `json:"chain-rpc,omitempty"`
	// SOCKS and HTTP are the loopback addresses of the requester's SOCKS5
	// and HTTP proxies ("off" to run none). They ask for a credential
	// (proxy-credentials.json) unless NoProxyAuth.
	SOCKS string `json:"socks,omitempty"`
	HTTP  string `json:"http-proxy,omitempty"`
	// ExitAllow and ExitDeny adjust the provider's exit policy: CIDRs
	// carved out of the default-deny ranges (never loopback or the node's
	// own addresses), and CIDRs refused on top of them.
	ExitAllow []string `json:"exit-allow,omitempty"`
	ExitDeny  []string `json:"exit-deny,omitempty"`
	// Scrypt is the keystore strength: standard (default) or light.
	Scrypt string `json:"scrypt,omitempty"`
	// DHTServer forces DHT server mode; otherwise it follows reachability.
	DHTServer bool `json:"dht-server,omitempty"`
	// RelayService makes the node a circuit relay (v2) for peers behind
	// NAT, within the limits of relayResources. Only for a node with a
	// public address: it also declares the node publicly reachable.
	RelayService bool `json:"relay-service,omitempty"`
	// GeoIP are MaxMind-format .mmdb files (GeoLite2 City/Country/ASN,
	// DB-IP Lite) that locate this node's offers and check providers.
	GeoIP []string `json:"geoip,omitempty"`
	// UPnP asks the local router for a port mapping (UPnP / NAT-PMP).
	UPnP bool `json:"upnp,omitempty"`

	// Network is a network file (package network) naming the chain, its
	// RPC URLs and contracts, and the bootstrap peers; see withNetwork for
	// how it combines with the settings above. Init copies it into the
	// data dir and writes that copy's absolute path here.
	Network string `json:"network,omitempty"`
	// Confirmations is how many blocks must sit on top of a deal event's
	// block before the node acts on it. Unset: the network file's, else 0
	// on the dev chain and network.DefaultConfirmations on any other.
	Confirmations *uint64 `json:"confirmations,omitempty"`
	// ExitAllowLoopback lets the provider's exit reach 127.0.0.0/8, so a
	// hand-run pair can be smoke-tested against a local server. It opens
	// the machine's own services to every requester: never on a provider
	// serving the public. The node says so in its log at start.
	ExitAllowLoopback bool `json:"exit-allow-loopback,omitempty"`

	// rpcs are the chain's JSON-RPC URLs in the order tried: ChainRPC,
	// then the network file's (set by withNetwork).
	rpcs []string
	// NoProxyAuth lets the proxies serve clients without a credential.
	// Only for loopback listeners on a machine whose every user may spend
	// the node's escrow: refused with a non-loopback proxy address.
	NoProxyAuth bool `json:"no-proxy-auth,omitempty"`
	// AllowPublicListen lets the API and the proxies listen on an address
	// other than loopback. The proxies still require credentials, and
	// /metrics goes behind the API token.
	AllowPublicListen bool `json:"allow-public-listen,omitempty"`
	// TunnelIdleTimeout closes an established tunnel that carried no byte
	// either way for that long (a Go duration, e.g. "5m"; "0" never;
	// empty: tunnel.DefaultTunnelIdleTimeout). On both sides: the
	// requester's proxies and the provider's exit.
	TunnelIdleTimeout string `json:"tunnel-idle-timeout,omitempty"`
	// MetricsAuth puts /metrics behind the API token on loopback too
	// (off a loopback address it always is).
	MetricsAuth bool `json:"metrics-auth,omitempty"`
}

// Defaults.
const (
	DefaultAPI     = "127.0.0.1:7480"
	DefaultSOCKS   = "127.0.0.1:1080"
	DefaultHTTP    = "127.0.0.1:8080"
	DefaultChainID = 1337
	// DefaultEscrow is the escrow address of the embedded dev chain's first
	// deployment; real networks set their own.
	DefaultEscrow = "0x0000000000000000000000000000000000000000"
	configFile    = "config.json"
	networkFile   = "network.json"
	tokenFile     = "api.token"
	dbDir         = "db"
)

// DefaultListen listens on every interface, TCP and QUIC, port 4001.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen
	}
	if c.API == "" {
		c.API = DefaultAPI
	}
	if c.ChainID == 0 {
		c.ChainID = DefaultChainID
	}
	if c.Escrow == "" {
		c.Escrow = DefaultEscrow
	}
	if c.SOCKS == "" {
		c.SOCKS = DefaultSOCKS
	}
	if c.HTTP == "" {
		c.HTTP = DefaultHTTP
	}
	return c
}

// validate names the first bad setting.
func (c Config) validate() error {
	for _, l := range c.Listen {
		if _, err := ma.NewMultiaddr(l); err != nil {
			return fmt.Errorf("node: listen address %q: %w", l, err)
		}
	}
	for _, b := range c.Bootstrap {
		if _, err := ma.NewMultiaddr(b); err != nil {
			return fmt.Errorf("node: bootstrap address %q: %w", b, err)
		}
	}
	for _, cc := range c.Countries {
		if !orderbook.ValidCountry(cc) {
			return fmt.Errorf("node: country %q is not an ISO 3166-1 alpha-2 code", cc)
		}
	}
	for _, p := range append(append([]string(nil), c.ExitAllow...), c.ExitDeny...) {
		if _, err := netip.ParsePrefix(p); err != nil {
			return fmt.Errorf("node: exit policy prefix %q: %w", p, err)
		}
	}
	for _, p := range c.ExitAllow {
		pp := netip.MustParsePrefix(p) // parsed above
		for _, never := range neverAllowed {
			if pp.Overlaps(never.p) {
				return fmt.Errorf("node: --exit-allow %s: the exit never reaches %s (%s) through --exit-allow%s", p, never.p, never.what, never.hint)
			}
		}
	}
	if !common.IsHexAddress(c.Escrow) {
		return fmt.Errorf("node: escrow %q is not an address", c.Escrow)
	}
	if _, _, err := scryptParams(c.Scrypt); err != nil {
		return err
	}
	if _, err := c.tunnelIdle(); err != nil {
		return err
	}
	return c.checkListeners()
}

// tunnelIdle is TunnelIdleTimeout parsed (0: never).
func (c Config) tunnelIdle() (time.Duration, error) {
	if c.TunnelIdleTimeout == "" {
		return tunnel.DefaultTunnelIdleTimeout, nil
	}
	d, err := time.ParseDuration(c.TunnelIdleTimeout)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("node: --tunnel-idle-timeout %q: want a duration like 5m (0: never)", c.TunnelIdleTimeout)
	}
	return d, nil
}

// ErrPublicListen: a listen address other than loopback without
// --allow-public-listen, or a public proxy without credentials.
var ErrPublicListen = errors.New("node: listen address is not loopback")

// checkListeners keeps the API and the proxies on loopback unless the
// owner says otherwise: a proxy anyone can reach spends the node's
// escrow, and with auto-buy buys deals.
func (c Config) checkListeners() error {
	for _, l := range []struct{ flag, addr string }{{"--api", c.API}, {"--socks", c.SOCKS}, {"--http-proxy", c.HTTP}} {
		if l.addr == "" || l.addr == "off" {
			continue
		}
		if IsLoopbackAddr(l.addr) {
			continue
		}
		if !c.AllowPublicListen {
			return fmt.Errorf("%w: %s %s: anyone who reaches it could use the node (and spend its escrow); listen on 127.0.0.1, or add --allow-public-listen", ErrPublicListen, l.flag, l.addr)
		}
		if l.flag != "--api" && c.NoProxyAuth {
			return fmt.Errorf("%w: %s %s with --no-proxy-auth: a proxy on a public address must ask for credentials; drop --no-proxy-auth", ErrPublicListen, l.flag, l.addr)
		}
	}
	return nil
}

// neverAllowed are the ranges the exit policy refuses whatever
// --exit-allow says (tunnel.PolicyConfig.AllowPrefixes): a prefix that
// touches them would be saved and do nothing there.
var neverAllowed = []struct {
	p          netip.Prefix
	what, hint string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", "; for a local smoke test, --exit-allow-loopback opens 127.0.0.0/8"},
	{netip.MustParsePrefix("::1/128"), "loopback", ""},
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address", ""},
	{netip.MustParsePrefix("::/128"), "the unspecified address", ""},
}

// IsLoopbackAddr reports whether a host:port listens on loopback only: a
// loopback IP or "localhost". An empty host (every interface), another
// name or another address is not.
func IsLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// Domain is the EIP-712 domain the node signs and checks under.
func (c Config) Domain() orderbook.Domain {
	return orderbook.Domain{ChainID: c.ChainID, VerifyingContract: common.HexToAddress(c.Escrow)}
}

// Init creates a data dir: a new key in the keystore (encrypted with
// password), config.json, an API token and the proxy password. It refuses a dir that already
// has a key.
func Init(dir, password string, cfg Config) (common.Address, error) {
	key, err := ethcrypto.GenerateKey()
	if err != nil {
		return common.Address{}, err
	}
	return InitKey(dir, password, cfg, key)
}

// InitKey is Init with a key made elsewhere (ipsx key import). A network
// file named by cfg.Network is checked against cfg, copied into the data
// dir, and config.json names the copy by its absolute path.
func InitKey(dir, password string, cfg Config, key *ecdsa.PrivateKey) (common.Address, error) {
	if password == "" {
		return common.Address{}, errors.New("node: empty passphrase (use --password-file or IPSX_PASSWORD)")
	}
	if key == nil {
		return common.Address{}, errors.New("node: no key")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return common.Address{}, err
	}
	var netFile []byte
	if cfg.Network != "" {
		if _, _, err := cfg.withNetwork(); err != nil {
			return common.Address{}, err
		}
		b, err := os.ReadFile(cfg.Network)
		if err != nil {
			return common.Address{}, fmt.Errorf("node: network file: %w", err)
		}
		netFile = b
	}
	if HasKey(dir) {
		return common.Address{}, fmt.Errorf("node: %s already has a key", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return common.Address{}, fmt.Errorf("node: create data dir: %w", err)
	}
	if netFile != nil {
		abs, err := filepath.Abs(filepath.Join(dir, networkFile))
		if err != nil {
			return common.Address{}, err
		}
		if err := os.WriteFile(abs, netFile, 0o644); err != nil {
			return common.Address{}, fmt.Errorf("node: copy network file: %w", err)
		}
		cfg.Network = abs
	}
	addr, err := WriteKey(dir, key, password, cfg.Scrypt)
	if err != nil {
		return common.Address{}, err
	}
	if err := WriteConfig(dir, cfg); err != nil {
		return common.Address{}, err
	}
	if _, err := EnsureToken(dir); err != nil {
		return common.Address{}, err
	}
	if _, err := EnsureCredentials(dir); err != nil {
		return common.Address{}, err
	}
	return addr, nil
}

// HasKey reports whether dir's keystore holds a key file.
func HasKey(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, keystoreDir, "*"))
	return len(files) > 0
}

// WriteConfig writes dir/config.json.
func WriteConfig(dir string, cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("node: write config: %w", err)
	}
	return nil
}

// LoadConfig reads dir/config.json; a missing file gives the defaults.
func LoadConfig(dir string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return cfg.withDefaults(), nil
	}
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("node: %s: %w", filepath.Join(dir, configFile), err)
	}
	return cfg.withDefaults(), nil
}

// EnsureToken returns the API bearer token in dir/api.token, creating one
// (256 random bits) if there is none.
func EnsureToken(dir string) (string, error) {
	p := filepath.Join(dir, tokenFile)
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	var r [32]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node: write api token: %w", err)
	}
	return tok, nil
}

// Timing of liveness: offers live TTL after their maker's latest heartbeat;
// a maker heartbeats every TTL/3 so two lost heartbeats do not kill its
// offers.
const (
	DefaultHeartbeat = orderbook.DefaultLiveTTL / 3
	sweepInterval    = 5 * time.Second
)
