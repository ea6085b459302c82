package agreement

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// EIP-712 type strings. They are hashed into the type hashes and must stay
// byte-identical to the ones in chain/contracts/Escrow.sol.
const (
	DealType = "Deal(bytes32 offerId,bytes32 requestId,address provider,address requester," +
		"uint32 ips,uint256 pricePerIpHour,uint256 pricePerGB,uint256 maxAmount," +
		"uint64 start,uint64 deadline,uint64 nonce)"
	VoucherType = "Voucher(bytes32 dealId,uint256 amount,uint64 byteCount,bytes32 connLogHash)"
	CancelType  = "Cancel(bytes32 dealId)"
	domainType  = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

	// DomainName and DomainVersion are the EIP-712 domain's name and version.
	DomainName    = "IPSX"
	DomainVersion = "1"

	// SignatureLength is the length of an r‖s‖v signature.
	SignatureLength = 65
)

var (
	DealTypeHash    = crypto.Keccak256Hash([]byte(DealType))
	VoucherTypeHash = crypto.Keccak256Hash([]byte(VoucherType))
	CancelTypeHash  = crypto.Keccak256Hash([]byte(CancelType))
	domainTypeHash  = crypto.Keccak256Hash([]byte(domainType))
)

var (
	ErrInvalidTerms   = errors.New("agreement: invalid deal terms")
	ErrInvalidVoucher = errors.New("agreement: invalid voucher")
	ErrBadSignature   = errors.New("agreement: bad signature")
	ErrWrongSigner    = errors.New("agreement: signature from wrong signer")
)

var (
	maxUint128 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	// secp256k1N / 2; signatures with a higher s are rejected, as on chain.
	halfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)
)

// Domain is the EIP-712 domain of one deployment of the Escrow contract.
type Domain struct {
	ChainID *big.Int
	Escrow  common.Address
}

// Separator returns the EIP-712 domain separator.
func (d Domain) Separator() common.Hash {
	return crypto.Keccak256Hash(
		domainTypeHash[:],
		crypto.Keccak256([]byte(DomainName)),
		crypto.Keccak256([]byte(DomainVersion)),
		word(d.ChainID),
		common.LeftPadBytes(d.Escrow[:], 32),
	)
}

// Digest returns the EIP-712 digest keccak256(0x1901 ‖ separator ‖ structHash),
// which is what gets signed.
func (d Domain) Digest(structHash common.Hash) common.Hash {
	sep := d.Separator()
	return crypto.Keccak256Hash([]byte{0x19, 0x01}, sep[:], structHash[:])
}

// Terms are the deal terms both parties sign and the Escrow contract locks
// funds for. Amounts are token base units (10^-18 IPSX); times are unix
// seconds.
type Terms struct {
	OfferID        common.Hash    // the provider's offer (its order id)
	RequestID      common.Hash    // the requester's request (its order id)
	Provider       common.Address // paid at settlement
	Requester      common.Address // funds the deal; signs the vouchers
	IPs            uint32         // number of IPs rented
	PricePerIPHour *big.Int       // per IP per hour
	PricePerGB     *big.Int       // per 10^9 bytes
	MaxAmount      *big.Int       // reserved at open; at most 2^128-1
	Start          uint64         // service starts
	Deadline       uint64         // service ends; refundable from Deadline + the escrow's grace
	Nonce          uint64         // distinguishes otherwise identical terms
}

// Validate checks what the contract checks without a clock: non-zero
// parties, Start < Deadline, 0 < MaxAmount < 2^128 and prices in uint256.
// The contract also requires Deadline to be in the future at open.
func (t Terms) Validate() error {
	switch {
	case t.Provider == (common.Address{}) || t.Requester == (common.Address{}):
		return fmt.Errorf("%w: zero party address", ErrInvalidTerms)
	case t.Start >= t.Deadline:
		return fmt.Errorf("%w: start %d not before deadline %d", ErrInvalidTerms, t.Start, t.Deadline)
	case t.MaxAmount == nil || t.MaxAmount.Sign() <= 0 || t.MaxAmount.Cmp(maxUint128) > 0:
		return fmt.Errorf("%w: max amount %v out of range", ErrInvalidTerms, t.MaxAmount)
	case !isUint256(t.PricePerIPHour) || !isUint256(t.PricePerGB):
		return fmt.Errorf("%w: price out of range", ErrInvalidTerms)
	}
	return nil
}

// StructHash returns the EIP-712 hashStruct of the terms.
func (t Terms) StructHash() common.Hash {
	return crypto.Keccak256Hash(
		DealTypeHash[:],
		t.OfferID[:],
		t.RequestID[:],
		common.LeftPadBytes(t.Provider[:], 32),
		common.LeftPadBytes(t.Requester[:], 32),
		uintWord(uint64(t.IPs)),
		word(t.PricePerIPHour),
		word(t.PricePerGB),
		word(t.MaxAmount),
		uintWord(t.Start),
		uintWord(t.Deadline),
		uintWord(t.Nonce),
	)
}

// ID returns the deal id: the EIP-712 digest of the terms in domain d. It is
// also the digest both parties sign.
func (t Terms) ID(d Domain) common.Hash { return d.Digest(t.StructHash()) }

// Sign signs the terms' id with key.
func (t Terms) Sign(d Domain, key *ecdsa.PrivateKey) ([]byte, error) {
	return Sign(t.ID(d), key)
}

// VerifySignatures checks that providerSig and requesterSig are the
// provider's and the requester's signatures over the terms.
func (t Terms) VerifySignatures(d Domain, providerSig, requesterSig []byte) error {
	id := t.ID(d)
	if err := Verify(id, providerSig, t.Provider); err != nil {
		return fmt.Errorf("provider signature: %w", err)
	}
	if err := Verify(id, requesterSig, t.Requester); err != nil {
		return fmt.Errorf("requester signature: %w", err)
	}
	return nil
}

// Voucher is the requester's cumulative payment promise for a deal. Each new
// voucher replaces the previous one; the provider settles with the latest.
type Voucher struct {
	DealID      common.Hash
	Amount      *big.Int    // cumulative, token base units; at most the deal's MaxAmount
	Bytes       uint64      // cumulative bytes served (byteCount on chain)
	ConnLogHash common.Hash // hash of the co-signed connection log
}

// Validate checks that the amount is a non-negative uint256.
func (v Voucher) Validate() error {
	if v.Amount == nil || !isUint256(v.Amount) {
		return fmt.Errorf("%w: amount %v out of range", ErrInvalidVoucher, v.Amount)
	}
	return nil
}

// StructHash returns the EIP-712 hashStruct of the voucher.
func (v Voucher) StructHash() common.Hash {
	return crypto.Keccak256Hash(
		VoucherTypeHash[:],
		v.DealID[:],
		word(v.Amount),
		uintWord(v.Bytes),
		v.ConnLogHash[:],
	)
}

// Digest returns the EIP-712 digest the requester signs.
func (v Voucher) Digest(d Domain) common.Hash { return d.Digest(v.StructHash()) }

// Sign signs the voucher with key (the requester's).
func (v Voucher) Sign(d Domain, key *ecdsa.PrivateKey) ([]byte, error) {
	return Sign(v.Digest(d), key)
}

// CancelDigest returns the EIP-712 digest of Cancel{dealId}, which both
// parties sign to cancel an open deal cooperatively.
func CancelDigest(d Domain, dealID common.Hash) common.Hash {
	return d.Digest(crypto.Keccak256Hash(CancelTypeHash[:], dealID[:]))
}

// SignCancel signs Cancel{dealId} with key.
func SignCancel(d Domain, dealID common.Hash, key *ecdsa.PrivateKey) ([]byte, error) {
	return Sign(CancelDigest(d, dealID), key)
}

// Sign signs a digest and returns r‖s‖v with v = 27 or 28.
func Sign(digest common.Hash, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		return nil, fmt.Errorf("agreement: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// Recover returns the signer of digest. It accepts v in {0, 1, 27, 28} and
// rejects high-s signatures, exactly as the contract does.
func Recover(digest common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != SignatureLength {
		return common.Address{}, fmt.Errorf("%w: length %d", ErrBadSignature, len(sig))
	}
	s := new(big.Int).SetBytes(sig[32:64])
	if s.Cmp(halfN) > 0 {
		return common.Address{}, fmt.Errorf("%w: high s", ErrBadSignature)
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return common.Address{}, fmt.Errorf("%w: v %d", ErrBadSignature, sig[64])
	}
	norm := make([]byte, SignatureLength)
	copy(norm, sig)
	norm[64] = v
	pub, err := crypto.SigToPub(digest[:], norm)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Verify checks that sig is want's signature over digest.
func Verify(digest common.Hash, sig []byte, want common.Address) error {
	got, err := Recover(digest, sig)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: want %s, got %s", ErrWrongSigner, want, got)
	}
	return nil
}

// word encodes a uint256 as 32 big-endian bytes; nil is zero. Values out of
// range are caught by Validate; here they are truncated to 256 bits.
func word(x *big.Int) []byte {
	if x == nil {
		return make([]byte, 32)
	}
	b := new(big.Int).And(x, maxUint256).Bytes()
	return common.LeftPadBytes(b, 32)
}

func uintWord(x uint64) []byte {
	return word(new(big.Int).SetUint64(x))
}

func isUint256(x *big.Int) bool {
	return x != nil && x.Sign() >= 0 && x.Cmp(maxUint256) <= 0
}
