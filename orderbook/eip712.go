package orderbook

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"maps"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The EIP-712 type strings. docs/orders.md repeats them; a test keeps the two
// in step.
const (
	DomainType    = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	OfferType     = "Offer(address maker,uint64 nonce,uint32 version,uint64 created,uint64 expires,string country,string region,string city,uint32 asn,uint8 ipType,uint32 ips,uint8 protocols,uint256 pricePerHour,uint256 pricePerGB,uint32 minDuration,uint32 maxDuration,uint32 bandwidth,bool unverified)"
	RequestType   = "Request(address maker,uint64 nonce,uint32 version,uint64 created,uint64 expires,string country,string region,string city,uint32 asn,uint8 ipType,uint32 ips,uint8 protocols,uint32 duration,uint256 maxPricePerHour,uint256 maxPricePerGB,uint32 minBandwidth)"
	CancelType    = "Cancel(address maker,bytes32 orderId,uint64 created)"
	HeartbeatType = "Heartbeat(address maker,string country,uint64 created,uint32 count,bytes32 digest)"

	DomainName    = "IPSX"
	DomainVersion = "1"
)

var (
	domainTypeHash    = crypto.Keccak256Hash([]byte(DomainType))
	offerTypeHash     = crypto.Keccak256Hash([]byte(OfferType))
	requestTypeHash   = crypto.Keccak256Hash([]byte(RequestType))
	cancelTypeHash    = crypto.Keccak256Hash([]byte(CancelType))
	heartbeatTypeHash = crypto.Keccak256Hash([]byte(HeartbeatType))
	domainNameHash    = crypto.Keccak256Hash([]byte(DomainName))
	domainVersionHash = crypto.Keccak256Hash([]byte(DomainVersion))
)

// encoder builds the 32-byte-word encoding of EIP-712's encodeData and
// hashes it. Encoders are pooled with their Keccak state and buffers: an
// order id is computed for every order validated and every order a
// snapshot is built from, and allocating a hasher and a buffer for each of
// its keccak calls cost more than the permutations themselves.
type encoder struct {
	k   crypto.KeccakState
	buf []byte    // the words of one struct
	tmp [136]byte // one Keccak-256 block: strings and the digest input
}

var encoders = sync.Pool{New: func() any {
	return &encoder{k: crypto.NewKeccakState(), buf: make([]byte, 0, 18*32)}
}}

func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.buf = e.buf[:0]
	return e
}

func (e *encoder) free() { encoders.Put(e) }

var zeroWord [32]byte

func (e *encoder) word(w []byte) { e.buf = append(e.buf, w...) }

func (e *encoder) hash(h common.Hash) { e.word(h[:]) }

func (e *encoder) uint(v uint64) {
	e.buf = append(e.buf, zeroWord[:24]...)
	e.buf = binary.BigEndian.AppendUint64(e.buf, v)
}

func (e *encoder) big(v *big.Int) {
	n := len(e.buf)
	e.buf = append(e.buf, zeroWord[:]...)
	if v == nil {
		return
	}
	if v.Sign() < 0 || v.BitLen() > maxUint256Bits {
		// Out of a uint256's range (Validate refuses it): its low 256
		// bits in two's complement, as the agreement package words
		// amounts, so that an id is defined for any order.
		v = new(big.Int).And(v, uint256Mask)
	}
	v.FillBytes(e.buf[n:])
}

var uint256Mask = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), maxUint256Bits), big.NewInt(1))

func (e *encoder) address(a common.Address) {
	e.buf = append(e.buf, zeroWord[:12]...)
	e.buf = append(e.buf, a[:]...)
}

func (e *encoder) boolean(b bool) {
	var v uint64
	if b {
		v = 1
	}
	e.uint(v)
}

func (e *encoder) string(s string) { e.hash(e.stringHash(s)) }

// stringHash is keccak256(s), looked up for the empty string and the
// country codes (which are also many regions' codes), and remembered for
// other strings in a small cache, since the regions and cities of a book
// repeat.
func (e *encoder) stringHash(s string) common.Hash {
	if h, ok := knownStrings[s]; ok {
		return h
	}
	slot := &stringCache[maphash.String(stringSeed, s)%uint64(len(stringCache))]
	if c := slot.Load(); c != nil && c.s == s {
		return c.h
	}
	e.k.Reset()
	for r := s; len(r) > 0; {
		n := copy(e.tmp[:], r)
		e.k.Write(e.tmp[:n])
		r = r[n:]
	}
	h := e.read()
	if len(s) <= maxCachedString {
		slot.Store(&cachedString{s: s, h: h})
	}
	return h
}

// stringCache is a direct-mapped cache of string hashes: bounded, lock
// free, and exact (a slot holds the string it hashed), so that a peer
// churning it with new strings costs only misses.
var (
	stringCache [1024]atomic.Pointer[cachedString]
	stringSeed  = maphash.MakeSeed()
)

const maxCachedString = 256

type cachedString struct {
	s string
	h common.Hash
}

// knownStrings holds keccak256 of "" and of every country code; read-only
// after init.
var knownStrings = func() map[string]common.Hash {
	m := make(map[string]common.Hash, len(countries)+1)
	m[""] = crypto.Keccak256Hash(nil)
	for cc := range countries {
		m[cc] = crypto.Keccak256Hash([]byte(cc))
	}
	return m
}()

func (e *encoder) keccak(b []byte) common.Hash {
	e.k.Reset()
	e.k.Write(b)
	return e.read()
}

// read squeezes the hash out through e.tmp: a local array handed to the
// interface method would escape, an allocation per hash.
func (e *encoder) read() (h common.Hash) {
	e.k.Read(e.tmp[:32])
	copy(h[:], e.tmp[:32])
	return h
}

func (e *encoder) sum() common.Hash { return e.keccak(e.buf) }

// digest is keccak256("\x19\x01" || domainSeparator || hashStruct) of the
// struct encoded in e.
func (e *encoder) digest(d Domain) common.Hash {
	structHash := e.sum()
	sep := d.Separator()
	b := e.tmp[:66]
	b[0], b[1] = 0x19, 0x01
	copy(b[2:34], sep[:])
	copy(b[34:], structHash[:])
	return e.keccak(b)
}

// separators caches domain separators; a network has one or two domains,
// and the cache stops growing at maxSeparators so that orders claiming
// arbitrary domains (which are refused anyway) cannot bloat it. The map is
// copied on write, so that the parallel readers on the validation path
// share no lock.
var (
	separatorsMu sync.Mutex // serialises writers
	separators   atomic.Pointer[map[Domain]common.Hash]
)

const maxSeparators = 16

// Separator is the EIP-712 domain separator.
func (d Domain) Separator() common.Hash {
	if m := separators.Load(); m != nil {
		if h, ok := (*m)[d]; ok {
			return h
		}
	}
	h := d.separator()
	separatorsMu.Lock()
	defer separatorsMu.Unlock()
	old := separators.Load()
	if old == nil || len(*old) < maxSeparators {
		m := make(map[Domain]common.Hash, 1)
		if old != nil {
			maps.Copy(m, *old)
		}
		m[d] = h
		separators.Store(&m)
	}
	return h
}

func (d Domain) separator() common.Hash {
	e := getEncoder()
	defer e.free()
	e.hash(domainTypeHash)
	e.hash(domainNameHash)
	e.hash(domainVersionHash)
	e.uint(d.ChainID)
	e.address(d.VerifyingContract)
	return e.sum()
}

// Domain is the domain the order claims to be signed under.
func (o *Order) Domain() Domain {
	return Domain{ChainID: o.ChainID, VerifyingContract: o.VerifyingContract}
}

// StructHash is EIP-712's hashStruct of the order.
func (o *Order) StructHash() common.Hash {
	e := getEncoder()
	defer e.free()
	o.encode(e)
	return e.sum()
}

// ID is the order id: its EIP-712 digest under its domain.
func (o *Order) ID() common.Hash {
	e := getEncoder()
	defer e.free()
	o.encode(e)
	return e.digest(o.Domain())
}

// encode writes the order's encodeData into e.
func (o *Order) encode(e *encoder) {
	switch o.Kind {
	case KindOffer:
		e.hash(offerTypeHash)
	default:
		e.hash(requestTypeHash)
	}
	e.address(o.Maker)
	e.uint(o.Nonce)
	e.uint(uint64(o.Version))
	e.uint(o.Created)
	e.uint(o.Expires)
	e.string(o.Location.Country)
	e.string(o.Location.Region)
	e.string(o.Location.City)
	e.uint(uint64(o.Location.ASN))
	e.uint(uint64(o.IPType))
	e.uint(uint64(o.IPs))
	e.uint(uint64(o.Protocols))
	if o.Kind == KindOffer {
		e.big(o.PricePerHour)
		e.big(o.PricePerGB)
		e.uint(uint64(o.MinDuration))
		e.uint(uint64(o.MaxDuration))
		e.uint(uint64(o.Bandwidth))
		e.boolean(o.Unverified)
	} else {
		e.uint(uint64(o.Duration))
		e.big(o.PricePerHour)
		e.big(o.PricePerGB)
		e.uint(uint64(o.Bandwidth))
	}
}

// Sign fills in Maker from key and sets Signature.
func (o *Order) Sign(key *ecdsa.PrivateKey) error {
	o.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(o.ID(), key)
	if err != nil {
		return err
	}
	o.Signature = sig
	return nil
}

// Signer recovers the address that signed the order.
func (o *Order) Signer() (common.Address, error) { return recoverSigner(o.ID(), o.Signature) }

// ID of a cancel: its EIP-712 digest; also its gossip message id.
func (c *Cancel) ID() common.Hash {
	e := getEncoder()
	defer e.free()
	e.hash(cancelTypeHash)
	e.address(c.Maker)
	e.hash(c.OrderID)
	e.uint(c.Created)
	return e.digest(Domain{c.ChainID, c.VerifyingContract})
}

// Sign fills in Maker from key and sets Signature.
func (c *Cancel) Sign(key *ecdsa.PrivateKey) error {
	c.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(c.ID(), key)
	c.Signature = sig
	return err
}

// Signer recovers the address that signed the cancel.
func (c *Cancel) Signer() (common.Address, error) { return recoverSigner(c.ID(), c.Signature) }

// ID of a heartbeat: its EIP-712 digest; also its gossip message id.
func (h *Heartbeat) ID() common.Hash {
	e := getEncoder()
	defer e.free()
	e.hash(heartbeatTypeHash)
	e.address(h.Maker)
	e.string(h.Country)
	e.uint(h.Created)
	e.uint(uint64(h.Count))
	e.hash(h.Digest)
	return e.digest(Domain{h.ChainID, h.VerifyingContract})
}

// Sign fills in Maker from key and sets Signature.
func (h *Heartbeat) Sign(key *ecdsa.PrivateKey) error {
	h.Maker = crypto.PubkeyToAddress(key.PublicKey)
	sig, err := signDigest(h.ID(), key)
	h.Signature = sig
	return err
}

// Signer recovers the address that signed the heartbeat.
func (h *Heartbeat) Signer() (common.Address, error) { return recoverSigner(h.ID(), h.Signature) }

// signDigest signs in the Ethereum convention: V is 27 or 28, as
// eth_signTypedData returns it.
func signDigest(d common.Hash, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := crypto.Sign(d[:], key)
	if err != nil {
		return nil, fmt.Errorf("orderbook: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// The bounds of a signature's scalars as 32-byte big-endian numbers, so
// that the check on every verification compares bytes instead of
// allocating big.Ints: 1 <= r <= n-1, 1 <= s <= n/2 (low S).
var (
	secp256k1NMinus1 = scalarBytes(new(big.Int).Sub(crypto.S256().Params().N, big.NewInt(1)))
	secp256k1HalfN   = scalarBytes(new(big.Int).Rsh(crypto.S256().Params().N, 1))
)

func scalarBytes(v *big.Int) (b [32]byte) {
	v.FillBytes(b[:])
	return b
}

// scalarIn reports whether the 32-byte big-endian x is in [1, max].
func scalarIn(x []byte, max *[32]byte) bool {
	return bytes.Compare(x, zeroWord[:]) > 0 && bytes.Compare(x, max[:]) <= 0
}

// recoverSigner accepts V as 0/1 or 27/28 and only low-S signatures, so one
// order has exactly one valid signature.
func recoverSigner(d common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("%w: signature is %d bytes, want 65", ErrBadSignature, len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return common.Address{}, fmt.Errorf("%w: recovery id %d", ErrBadSignature, sig[64])
	}
	if !scalarIn(sig[:32], &secp256k1NMinus1) || !scalarIn(sig[32:64], &secp256k1HalfN) {
		return common.Address{}, fmt.Errorf("%w: r or s out of range", ErrBadSignature)
	}
	var norm [65]byte
	copy(norm[:], sig)
	norm[64] = v
	pub, err := crypto.Ecrecover(d[:], norm[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return pubkeyAddress((*[64]byte)(pub[1:65])), nil
}

// pubkeyAddress is the address of an uncompressed public key (X || Y),
// remembered in a small cache: makers sign many orders, cancels and
// heartbeats each, and the keccak of the key is a tenth of what
// verification costs besides the recovery itself.
func pubkeyAddress(pub *[64]byte) common.Address {
	slot := &addressCache[maphash.Bytes(stringSeed, pub[:])%uint64(len(addressCache))]
	if c := slot.Load(); c != nil && c.pub == *pub {
		return c.addr
	}
	e := getEncoder()
	h := e.keccak(pub[:])
	e.free()
	c := &cachedAddress{pub: *pub}
	copy(c.addr[:], h[12:])
	slot.Store(c)
	return c.addr
}

// addressCache is direct-mapped like stringCache, exact on the whole key.
var addressCache [1024]atomic.Pointer[cachedAddress]

type cachedAddress struct {
	pub  [64]byte
	addr common.Address
}
