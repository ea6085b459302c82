package vpn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The system configuration: the TUN's addresses and routes, the policy
// routing of a default route, the nftables tables that mark the node's
// own traffic and make the kill switch, and the resolver file. It is
// planned as data (plan, a pure function of the Config), recorded in the
// state file with how to undo each step before any step runs, and then
// applied with ip(8) and nft(8) — iproute2 and nftables, as wg-quick
// uses; the binary then needs no netlink code of its own, and what it did
// is what `ip` and `nft` show. Undo runs the recorded inverse steps in
// reverse order and tolerates steps already undone (the device's routes
// go with the device), so it can run again after a crash.

// step is one command of the plan.
type step struct {
	Args  []string `json:"args"` // args[0] is "ip" or "nft"
	Stdin string   `json:"stdin,omitempty"`
	Undo  []string `json:"undo,omitempty"`
	// Kill marks the kill switch, which Recover leaves in place.
	Kill bool `json:"kill,omitempty"`
}

// fileChange is a file the plan rewrites (in place: /etc/resolv.conf may
// be a bind mount, as `ip netns exec` makes it) and what it held before.
type fileChange struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Old     string `json:"old"`
}

// stateRecord is the state file: enough to undo a VPN's system changes
// with no other knowledge, after the process that made them is gone.
type stateRecord struct {
	Device  string       `json:"device"`
	Created time.Time    `json:"created"`
	Steps   []step       `json:"steps"`
	Files   []fileChange `json:"files"`
}

// Table names of the nftables tables (family inet).
const (
	nftMarkTable = "ipsx_vpn"
	nftKillTable = "ipsx_killswitch"
)

// plan is the system configuration of cfg for device dev. v6 says whether
// the kernel does IPv6 (with it off there is no IPv6 to route, or leak).
func plan(cfg *Config, dev string, v6 bool) []step {
	var steps []step
	add := func(s step) { steps = append(steps, s) }
	add(step{Args: []string{"ip", "-4", "addr", "add", cfg.Addr4.String(), "dev", dev}})
	if v6 && cfg.Addr6.IsValid() {
		add(step{Args: []string{"ip", "-6", "addr", "add", cfg.Addr6.String(), "dev", dev, "nodad"}})
	}
	add(step{Args: []string{"ip", "link", "set", dev, "up"}})
	for _, r := range cfg.Routes {
		if r.Addr().Is6() && !v6 {
			continue
		}
		add(step{Args: []string{"ip", family(r.Addr()), "route", "add", r.String(), "dev", dev},
			Undo: []string{"ip", family(r.Addr()), "route", "del", r.String(), "dev", dev}})
	}
	if cfg.DNS.IsValid() && !cfg.DefaultRoute {
		p := netip.PrefixFrom(cfg.DNSAddr, cfg.DNSAddr.BitLen())
		add(step{Args: []string{"ip", family(cfg.DNSAddr), "route", "add", p.String(), "dev", dev},
			Undo: []string{"ip", family(cfg.DNSAddr), "route", "del", p.String(), "dev", dev}})
	}
	mark := "0x" + strconv.FormatUint(uint64(cfg.FwMark), 16)
	table := strconv.Itoa(cfg.Table)
	if cfg.DefaultRoute {
		fams := []string{"-4"}
		if v6 {
			fams = append(fams, "-6")
		}
		// The marking first: from the moment the rules are in, the node's
		// own packets must already carry the mark.
		add(step{Args: []string{"nft", "-f", "-"}, Stdin: markRules(cfg, dev, mark),
			Undo: []string{"nft", "delete", "table", "inet", nftMarkTable}})
		for _, f := range fams {
			add(step{Args: []string{"ip", f, "route", "add", "default", "dev", dev, "table", table},
				Undo: []string{"ip", f, "route", "flush", "table", table}})
			add(step{Args: []string{"ip", f, "rule", "add", "table", "main", "suppress_prefixlength", "0", "priority", strconv.Itoa(cfg.RulePriority - 1)},
				Undo: []string{"ip", f, "rule", "del", "priority", strconv.Itoa(cfg.RulePriority - 1)}})
			add(step{Args: []string{"ip", f, "rule", "add", "not", "fwmark", mark, "table", table, "priority", strconv.Itoa(cfg.RulePriority)},
				Undo: []string{"ip", f, "rule", "del", "priority", strconv.Itoa(cfg.RulePriority)}})
		}
	}
	if cfg.KillSwitch {
		add(step{Args: []string{"nft", "-f", "-"}, Stdin: killRules(cfg, dev, mark, v6),
			Undo: []string{"nft", "delete", "table", "inet", nftKillTable}, Kill: true})
	}
	return steps
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "-4"
	}
	return "-6"
}

// bypassRules are the nftables statements that match the node's own
// traffic (its listen ports as the source, its bypass hosts as the
// destination) and end with verdict.
func bypassRules(cfg *Config, verdict string) []string {
	var out []string
	if len(cfg.Bypass.Ports) > 0 {
		ps := make([]string, len(cfg.Bypass.Ports))
		for i, p := range cfg.Bypass.Ports {
			ps[i] = strconv.Itoa(int(p))
		}
		out = append(out, "meta l4proto { tcp, udp } th sport { "+strings.Join(ps, ", ")+" } "+verdict)
	}
	var h4, h6 []string
	for _, h := range cfg.Bypass.Hosts {
		if h.Unmap().Is4() {
			h4 = append(h4, h.Unmap().String())
		} else {
			h6 = append(h6, h.String())
		}
	}
	if len(h4) > 0 {
		out = append(out, "ip daddr { "+strings.Join(h4, ", ")+" } "+verdict)
	}
	if len(h6) > 0 {
		out = append(out, "ip6 daddr { "+strings.Join(h6, ", ")+" } "+verdict)
	}
	return out
}

// markRules mark the node's own connections so that the policy routing
// leaves them in the main table: new connections from the node's listen
// ports or to its bypass hosts, and every connection that came in from
// outside the TUN (so that the node's answers, and a local server's, do
// not go into the TUN). The connection's mark is restored on each packet,
// both ways (src_valid_mark makes the reverse-path check see it).
//
// The mark is set after the socket's first route lookup, which chose the
// TUN's address as the source of an unbound socket (wg-quick marks its
// one socket with SO_MARK before it sends; the node's sockets are
// go-libp2p's, which take no such option). So a marked packet that
// leaves by another interface with the TUN's address as its source is
// masqueraded to that interface's address.
func markRules(cfg *Config, dev, mark string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftMarkTable)
	fmt.Fprintf(&b, "\tchain output {\n\t\ttype route hook output priority mangle; policy accept;\n")
	fmt.Fprintf(&b, "\t\tct mark %s meta mark set ct mark return\n", mark)
	for _, r := range bypassRules(cfg, "meta mark set "+mark+" ct mark set meta mark") {
		fmt.Fprintf(&b, "\t\t%s\n", r)
	}
	fmt.Fprintf(&b, "\t}\n")
	fmt.Fprintf(&b, "\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n")
	fmt.Fprintf(&b, "\t\tct mark %s meta mark set ct mark return\n", mark)
	fmt.Fprintf(&b, "\t\tiifname != %q ct state new ct mark set %s meta mark set %s\n", dev, mark, mark)
	fmt.Fprintf(&b, "\t}\n")
	fmt.Fprintf(&b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	fmt.Fprintf(&b, "\t\tmeta mark %s oifname != %q ip saddr %s masquerade\n", mark, dev, cfg.Addr4.Addr())
	if cfg.Addr6.IsValid() {
		fmt.Fprintf(&b, "\t\tmeta mark %s oifname != %q ip6 saddr %s masquerade\n", mark, dev, cfg.Addr6.Addr())
	}
	fmt.Fprintf(&b, "\t}\n}\n")
	return b.String()
}

// killRules refuse, at output, what would leave outside the TUN: with a
// default route everything but loopback, the TUN and the node's own
// traffic; with a split tunnel, what is for one of its routes.
func killRules(cfg *Config, dev, mark string, v6 bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftKillTable)
	fmt.Fprintf(&b, "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n")
	fmt.Fprintf(&b, "\t\toifname \"lo\" accept\n\t\toifname %q accept\n", dev)
	if cfg.DefaultRoute {
		fmt.Fprintf(&b, "\t\tmeta mark %s accept\n\t\tct mark %s accept\n", mark, mark)
		for _, r := range bypassRules(cfg, "accept") {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		fmt.Fprintf(&b, "\t\tmeta l4proto tcp reject with tcp reset\n\t\treject with icmpx type admin-prohibited\n")
	} else {
		var p4, p6 []string
		for _, r := range cfg.Routes {
			if r.Addr().Is4() {
				p4 = append(p4, r.String())
			} else if v6 {
				p6 = append(p6, r.String())
			}
		}
		if cfg.DNS.IsValid() {
			p4 = append(p4, cfg.DNSAddr.String())
		}
		for _, set := range []struct {
			fam string
			ps  []string
		}{{"ip", p4}, {"ip6", p6}} {
			if len(set.ps) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\t\t%s daddr { %s } meta l4proto tcp reject with tcp reset\n", set.fam, strings.Join(set.ps, ", "))
			fmt.Fprintf(&b, "\t\t%s daddr { %s } reject with icmpx type admin-prohibited\n", set.fam, strings.Join(set.ps, ", "))
		}
	}
	fmt.Fprintf(&b, "\t}\n}\n")
	return b.String()
}

// system is the applied configuration of one Run.
type system struct {
	rec  stateRecord
	path string
	ran  int // steps applied
}

// describe lists the applied commands, for Status.
func (s *system) describe() []string {
	var out []string
	for _, st := range s.rec.Steps[:s.ran] {
		line := strings.Join(st.Args, " ")
		if st.Stdin != "" {
			line += " <<table " + nftTableName(st.Stdin)
		}
		out = append(out, line)
	}
	for _, f := range s.rec.Files {
		out = append(out, "rewrote "+f.Path)
	}
	return out
}

func nftTableName(script string) string {
	f := strings.Fields(script)
	if len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// applySystem plans and applies cfg's system configuration for device
// dev. On an error it has undone what it did.
func applySystem(ctx context.Context, cfg *Config, dev string) (*system, error) {
	v6 := ipv6Enabled()
	steps := plan(cfg, dev, v6)
	needNft := false
	for _, st := range steps {
		if st.Args[0] == "nft" {
			needNft = true
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("vpn: ip (iproute2) not found: the VPN configures its device with it")
	}
	if _, err := exec.LookPath("nft"); needNft && err != nil {
		return nil, errors.New("vpn: nft (nftables) not found: --default-route and --kill-switch need it")
	}
	var files []fileChange
	if cfg.DefaultRoute {
		// The reverse-path check must see the connections' marks.
		files = append(files, fileChange{Path: "/proc/sys/net/ipv4/conf/all/src_valid_mark", Content: "1\n"})
	}
	if cfg.DNS.IsValid() {
		files = append(files, fileChange{Path: cfg.ResolvConf,
			Content: "# written by ipsx vpn up --dns; restored by ipsx vpn down\nnameserver " + cfg.DNSAddr.String() + "\n"})
	}
	for i := range files {
		old, err := os.ReadFile(files[i].Path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("vpn: read %s: %w", files[i].Path, err)
		}
		files[i].Old = string(old)
	}
	s := &system{rec: stateRecord{Device: dev, Created: time.Now().UTC(), Steps: steps, Files: files}, path: cfg.StateFile}
	if err := writeState(cfg.StateFile, s.rec); err != nil {
		return nil, err
	}
	for i, st := range steps {
		if err := runStep(ctx, st.Args, st.Stdin); err != nil {
			s.ran = i
			_ = s.undo(true)
			return nil, fmt.Errorf("vpn: %w", err)
		}
	}
	s.ran = len(steps)
	for _, f := range files {
		if err := writeInPlace(f.Path, f.Content); err != nil {
			_ = s.undo(true)
			return nil, fmt.Errorf("vpn: write %s: %w", f.Path, err)
		}
	}
	return s, nil
}

// undo reverses the applied steps and restores the files; with kill it
// removes the kill switch too, and then the state file. Steps already
// undone (a route that went with its device) are not errors.
func (s *system) undo(kill bool) error {
	err := undoRecord(&s.rec, s.ran, kill)
	if kill {
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}

// undoKeepKill undoes all but the kill switch and leaves the state file
// recording the kill switch alone.
func (s *system) undoKeepKill() error {
	err := undoRecord(&s.rec, s.ran, false)
	var kept []step
	for _, st := range s.rec.Steps[:s.ran] {
		if st.Kill {
			kept = append(kept, st)
		}
	}
	rec := s.rec
	rec.Steps, rec.Files = kept, nil
	return errors.Join(err, writeState(s.path, rec))
}

// undoRecord undoes the first ran steps of rec and its files. Without
// kill the kill switch's steps stay.
func undoRecord(rec *stateRecord, ran int, kill bool) error {
	var errs []error
	for i := len(rec.Files) - 1; i >= 0; i-- {
		f := rec.Files[i]
		if cur, err := os.ReadFile(f.Path); err == nil && string(cur) != f.Content {
			continue // changed since by someone else: theirs now
		}
		if err := writeInPlace(f.Path, f.Old); err != nil {
			errs = append(errs, fmt.Errorf("vpn: restore %s: %w", f.Path, err))
		}
	}
	for i := min(ran, len(rec.Steps)) - 1; i >= 0; i-- {
		st := rec.Steps[i]
		if len(st.Undo) == 0 || (st.Kill && !kill) {
			continue
		}
		if err := runStep(context.Background(), st.Undo, ""); err != nil && !alreadyGone(err) {
			errs = append(errs, fmt.Errorf("vpn: undo: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Recover undoes what a VPN that did not stop cleanly (a crash, a kill)
// left in the system, as recorded in stateFile; there being no file is
// not an error. With keepKillSwitch the kill switch stays armed, and the
// state file keeps it for a later Recover(…, false). It reports whether
// anything was found.
func Recover(stateFile string, keepKillSwitch bool) (bool, error) {
	b, err := os.ReadFile(stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vpn: read state %s: %w", stateFile, err)
	}
	var rec stateRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return true, fmt.Errorf("vpn: state %s: %w", stateFile, err)
	}
	err = undoRecord(&rec, len(rec.Steps), !keepKillSwitch)
	var kept []step
	for _, st := range rec.Steps {
		if st.Kill && keepKillSwitch {
			kept = append(kept, st)
		}
	}
	if len(kept) > 0 {
		rec.Steps, rec.Files = kept, nil
		return true, errors.Join(err, writeState(stateFile, rec))
	}
	if rerr := os.Remove(stateFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return true, err
}

// KillSwitchArmed reports whether stateFile records a kill switch that is
// still in place (left by Recover with keepKillSwitch).
func KillSwitchArmed(stateFile string) bool {
	b, err := os.ReadFile(stateFile)
	if err != nil {
		return false
	}
	var rec stateRecord
	if json.Unmarshal(b, &rec) != nil {
		return false
	}
	for _, st := range rec.Steps {
		if st.Kill {
			return true
		}
	}
	return false
}

func writeState(path string, rec stateRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vpn: write state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("vpn: write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vpn: write state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vpn: write state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("vpn: write state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeInPlace truncates and writes path, keeping its inode (a bind mount
// stays one).
func writeInPlace(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runStep(ctx context.Context, args []string, stdin string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &stepError{args: args, out: string(bytes.TrimSpace(out)), err: err}
	}
	return nil
}

type stepError struct {
	args []string
	out  string
	err  error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.args, " "), e.err, e.out)
}

// alreadyGone reports whether an undo failed because there was nothing
// left to undo.
func alreadyGone(err error) bool {
	var se *stepError
	if !errors.As(err, &se) {
		return false
	}
	for _, s := range []string{"No such", "Cannot find device", "does not exist", "not found", "ENOENT"} {
		if strings.Contains(se.out, s) {
			return true
		}
	}
	// `ip route flush table T` of an empty table succeeds; `ip rule del`
	// of a missing rule says "No such file or directory".
	return false
}

func ipv6Enabled() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(string(b)) == "0"
}
