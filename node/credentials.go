package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipsx/ipsx/sdk"
	"github.com/ipsx/ipsx/tunnel"
)

// Proxy credentials. The requester's proxies ask for a password, made at
// init (or on the first start of an older data dir) and kept in
// <datadir>/proxy-credentials.json. A fleet gets several credentials, each
// with its own spending cap, so that one runaway crawler cannot spend the
// whole escrow. The password names the credential; the username still
// names the route. The CLI edits the file (ipsx proxy password, ipsx proxy
// credential); a running node notices at once for a password it does not
// know (a credential just added or rotated) and within a second otherwise
// (an old password stops working), without a restart.
//
// What a credential spends is what its traffic costs at its deals' price
// per GB, plus what the deals auto-buy placed for its routes could lock.
// The node counts it (kept in the database, so a restart does not reset
// it) and refuses new connections of a credential at its cap.

// Credential is one entry of proxy-credentials.json.
type Credential struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	// Cap is the most the credential may spend, token base units as a
	// decimal string; empty: no cap.
	Cap string `json:"cap,omitempty"`
}

// DefaultCredential is the credential init creates; ipsx proxy password
// shows and rotates it.
const DefaultCredential = "default"

const credentialsFile = "proxy-credentials.json"

var credentialName = regexp.MustCompile(`^[A-Za-z0-9_.]{1,32}$`)

// ErrCredential is wrapped by the credential file's errors.
var ErrCredential = errors.New("node: proxy credential")

type credentialFile struct {
	Credentials []Credential `json:"credentials"`
}

func (c Credential) validate() error {
	if !credentialName.MatchString(c.Name) {
		return fmt.Errorf("%w: name %q: want 1 to 32 letters, digits, '_' or '.'", ErrCredential, c.Name)
	}
	if len(c.Password) < 16 || len(c.Password) > 128 {
		return fmt.Errorf("%w %s: password must be 16 to 128 characters", ErrCredential, c.Name)
	}
	if c.Cap != "" {
		if v, ok := new(big.Int).SetString(c.Cap, 10); !ok || v.Sign() < 0 {
			return fmt.Errorf("%w %s: cap %q is not a token amount in base units", ErrCredential, c.Name, c.Cap)
		}
	}
	return nil
}

// LogValue keeps the password out of logs.
func (c Credential) LogValue() any { return map[string]string{"name": c.Name, "cap": c.Cap} }

// newPassword is 128 random bits in hex: safe in a URL's userinfo
// (http://user:password@host) and in every shell.
func newPassword() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// LoadCredentials reads dir/proxy-credentials.json (none: no entries).
func LoadCredentials(dir string) ([]Credential, error) {
	b, err := os.ReadFile(filepath.Join(dir, credentialsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: read proxy credentials: %w", err)
	}
	var f credentialFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCredential, filepath.Join(dir, credentialsFile), err)
	}
	seen := map[string]bool{}
	pw := map[string]bool{}
	for _, c := range f.Credentials {
		if err := c.validate(); err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("%w: %s listed twice", ErrCredential, c.Name)
		}
		if pw[c.Password] {
			return nil, fmt.Errorf("%w %s: password shared with another credential", ErrCredential, c.Name)
		}
		seen[c.Name], pw[c.Password] = true, true
	}
	return f.Credentials, nil
}

// credMu serialises the file's read-modify-write within a process (the
// CLI is one process per command; the node only reads).
var credMu sync.Mutex

func writeCredentials(dir string, cs []Credential) error {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	b, err := json.MarshalIndent(credentialFile{Credentials: cs}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, credentialsFile+".*")
	if err != nil {
		return fmt.Errorf("node: write proxy credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(append(b, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		// Renamed into place, so the running node never reads half a file.
		err = os.Rename(tmp.Name(), filepath.Join(dir, credentialsFile))
	}
	if err != nil {
		return fmt.Errorf("node: write proxy credentials: %w", err)
	}
	return nil
}

// EnsureCredentials makes sure dir has a default credential, creating the
// file (or the entry) when missing, and returns the credentials.
func EnsureCredentials(dir string) ([]Credential, error) {
	credMu.Lock()
	defer credMu.Unlock()
	cs, err := LoadCredentials(dir)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.Name == DefaultCredential {
			return cs, nil
		}
	}
	pw, err := newPassword()
	if err != nil {
		return nil, err
	}
	cs = append(cs, Credential{Name: DefaultCredential, Password: pw})
	if err := writeCredentials(dir, cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// ProxyPassword returns the default credential's password, creating it if
// the data dir has none.
func ProxyPassword(dir string) (string, error) {
	cs, err := EnsureCredentials(dir)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.Name == DefaultCredential {
			return c.Password, nil
		}
	}
	return "", fmt.Errorf("%w: no %s credential", ErrCredential, DefaultCredential)
}

// RotateCredential gives a credential a new random password; the old one
// stops working as soon as a running node rereads the file (within a
// second).
func RotateCredential(dir, name string) (Credential, error) {
	if name == DefaultCredential {
		if _, err := EnsureCredentials(dir); err != nil {
			return Credential{}, err
		}
	}
	credMu.Lock()
	defer credMu.Unlock()
	cs, err := LoadCredentials(dir)
	if err != nil {
		return Credential{}, err
	}
	for i := range cs {
		if cs[i].Name != name {
			continue
		}
		if cs[i].Password, err = newPassword(); err != nil {
			return Credential{}, err
		}
		return cs[i], writeCredentials(dir, cs)
	}
	return Credential{}, fmt.Errorf("%w: no credential %q", ErrCredential, name)
}

// AddCredential adds a credential with a new random password and a cap
// (token base units; empty: none).
func AddCredential(dir, name, limit string) (Credential, error) {
	pw, err := newPassword()
	if err != nil {
		return Credential{}, err
	}
	c := Credential{Name: name, Password: pw, Cap: limit}
	if err := c.validate(); err != nil {
		return Credential{}, err
	}
	credMu.Lock()
	defer credMu.Unlock()
	cs, err := LoadCredentials(dir)
	if err != nil {
		return Credential{}, err
	}
	for _, o := range cs {
		if o.Name == name {
			return Credential{}, fmt.Errorf("%w: %s exists (remove it first, or rotate its password)", ErrCredential, name)
		}
	}
	return c, writeCredentials(dir, append(cs, c))
}

// RemoveCredential removes a credential. The default one can be rotated,
// not removed: a node always has one password its owner knows.
func RemoveCredential(dir, name string) error {
	if name == DefaultCredential {
		return fmt.Errorf("%w: %s cannot be removed (rotate it instead)", ErrCredential, name)
	}
	credMu.Lock()
	defer credMu.Unlock()
	cs, err := LoadCredentials(dir)
	if err != nil {
		return err
	}
	for i, c := range cs {
		if c.Name == name {
			return writeCredentials(dir, append(cs[:i], cs[i+1:]...))
		}
	}
	return fmt.Errorf("%w: no credential %q", ErrCredential, name)
}

// proxyAuth is the node's tunnel.Authenticator: the credentials file,
// reread when it changes, and each credential's spending against its cap.
type proxyAuth struct {
	dir string
	n   *Node

	mu       sync.Mutex // guards everything below
	checked  time.Time
	modTime  time.Time
	size     int64
	creds    map[string]Credential
	pw       *tunnel.Passwords
	spent    map[string]*big.Int
	loadErrs int
}

const (
	credentialRecheck = time.Second
	keyCredSpent      = "proxy/spent/"
)

func newProxyAuth(n *Node) (*proxyAuth, error) {
	a := &proxyAuth{dir: n.dir, n: n, spent: map[string]*big.Int{}}
	if _, err := EnsureCredentials(n.dir); err != nil {
		return nil, err
	}
	if err := a.reload(true); err != nil {
		return nil, err
	}
	_ = n.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(keyCredSpent)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(keyCredSpent):])
			_ = it.Item().Value(func(v []byte) error {
				if x, ok := new(big.Int).SetString(string(v), 10); ok {
					a.spent[name] = x
				}
				return nil
			})
		}
		return nil
	})
	return a, nil
}

// reload rereads the file if it changed (or force). A file that fails to
// parse keeps the last good set: a half-edited file must not open the
// proxies, nor lock the owner out.
func (a *proxyAuth) reload(force bool) error {
	p := filepath.Join(a.dir, credentialsFile)
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("node: proxy credentials: %w", err)
	}
	if !force && fi.ModTime().Equal(a.modTime) && fi.Size() == a.size {
		return nil
	}
	cs, err := LoadCredentials(a.dir)
	if err != nil {
		return err
	}
	byName := map[string]string{}
	creds := map[string]Credential{}
	for _, c := range cs {
		byName[c.Name], creds[c.Name] = c.Password, c
	}
	a.pw, a.creds, a.modTime, a.size = tunnel.NewPasswords(byName), creds, fi.ModTime(), fi.Size()
	return nil
}

// refresh rereads the file at most once per credentialRecheck, or at once
// with now (a password no credential has: it may be one just added).
func (a *proxyAuth) refresh(now bool) {
	if !now && time.Since(a.checked) < credentialRecheck {
		return
	}
	a.checked = time.Now()
	if err := a.reload(false); err != nil {
		a.loadErrs++
		if a.loadErrs == 1 || a.loadErrs%60 == 0 {
			a.n.log.Warn("proxy credentials file unreadable; keeping the previous credentials", "err", err)
		}
		return
	}
	a.loadErrs = 0
}

// Authenticate implements tunnel.Authenticator.
func (a *proxyAuth) Authenticate(pass string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh(false)
	name, ok := a.pw.Lookup(pass)
	if !ok {
		// A credential added or rotated a moment ago works at once: a miss
		// looks at the file (one stat; misses are rate-limited per source).
		a.refresh(true)
		name, ok = a.pw.Lookup(pass)
	}
	if !ok {
		return "", fmt.Errorf("%w: wrong password", tunnel.ErrProxyAuth)
	}
	if err := a.overCapLocked(name, nil); err != nil {
		return "", err
	}
	return name, nil
}

// overCapLocked refuses name when it has spent its cap (more nil), or
// when more would take it past the cap.
func (a *proxyAuth) overCapLocked(name string, more *big.Int) error {
	c, ok := a.creds[name]
	if !ok || c.Cap == "" {
		return nil
	}
	limit, _ := new(big.Int).SetString(c.Cap, 10)
	spent := new(big.Int)
	if s := a.spent[name]; s != nil {
		spent.Set(s)
	}
	if more == nil && spent.Cmp(limit) < 0 || more != nil && new(big.Int).Add(spent, more).Cmp(limit) <= 0 {
		return nil
	}
	what := "has spent"
	if more != nil {
		what = fmt.Sprintf("would spend %s more on top of", more)
	}
	return fmt.Errorf("%w: credential %s %s %s of its cap %s (token base units); raise the cap or use another credential",
		tunnel.ErrRouteRefused, name, what, spent, c.Cap)
}

// checkSpend refuses an expense that would take name over its cap.
func (a *proxyAuth) checkSpend(name string, amount *big.Int) error {
	if a == nil || name == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.overCapLocked(name, amount)
}

// spend adds to what name has spent.
func (a *proxyAuth) spend(name string, amount *big.Int) {
	if a == nil || name == "" || amount == nil || amount.Sign() <= 0 {
		return
	}
	a.mu.Lock()
	s := a.spent[name]
	if s == nil {
		s = new(big.Int)
		a.spent[name] = s
	}
	s.Add(s, amount)
	v := s.String()
	a.mu.Unlock()
	if err := a.n.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyCredSpent+name), []byte(v)) }); err != nil {
		a.n.log.Warn("save proxy credential spending", "credential", name, "err", err)
	}
}

// status lists the credentials with their caps and spending (no
// passwords).
func (a *proxyAuth) status() []sdk.CredentialStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh(false)
	var out []sdk.CredentialStatus
	for name, c := range a.creds {
		s := "0"
		if x := a.spent[name]; x != nil {
			s = x.String()
		}
		out = append(out, sdk.CredentialStatus{Name: name, Cap: c.Cap, Spent: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
