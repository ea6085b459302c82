package orderbook

import (
	"encoding/binary"
	"errors"
	"math/big"
)

// A stored order is its deadline (8 bytes) and the order in a binary form
// of the book's own: recordFormat, then the fields in the order of the
// Order struct, integers big-endian, strings, prices and the signature
// each after its length as a uvarint. The book reads every offer of a
// shard before each match, and this form reads several times faster than
// the wire form's JSON. Records written before it hold the wire form,
// which starts with '{', and are still read.
const recordFormat byte = 1

// appendStoredOrder appends the stored form of o to b.
func appendStoredOrder(b []byte, o *Order) []byte {
	b = append(b, recordFormat, byte(o.Kind))
	b = binary.BigEndian.AppendUint64(b, o.ChainID)
	b = append(b, o.VerifyingContract[:]...)
	b = append(b, o.Maker[:]...)
	b = binary.BigEndian.AppendUint64(b, o.Nonce)
	b = binary.BigEndian.AppendUint32(b, o.Version)
	b = binary.BigEndian.AppendUint64(b, o.Created)
	b = binary.BigEndian.AppendUint64(b, o.Expires)
	for _, s := range []string{o.Location.Country, o.Location.Region, o.Location.City} {
		b = appendBytes(b, []byte(s))
	}
	b = binary.BigEndian.AppendUint32(b, o.Location.ASN)
	b = append(b, byte(o.IPType))
	b = binary.BigEndian.AppendUint32(b, o.IPs)
	b = append(b, byte(o.Protocols))
	for _, v := range []*big.Int{o.PricePerHour, o.PricePerGB} {
		var mag []byte
		if v != nil {
			mag = v.Bytes() // the book holds validated orders: 0 <= v < 2^256
		}
		b = appendBytes(b, mag)
	}
	for _, v := range []uint32{o.MinDuration, o.MaxDuration, o.Duration, o.Bandwidth} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	var unverified byte
	if o.Unverified {
		unverified = 1
	}
	b = append(b, unverified)
	return appendBytes(b, o.Signature)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

var errCorruptRecord = errors.New("orderbook: corrupt record")

// decodeStoredOrder reads what appendStoredOrder wrote.
func decodeStoredOrder(b []byte) (*Order, error) {
	r := recordReader{b: b}
	if r.byte() != recordFormat {
		return nil, errCorruptRecord
	}
	o := &Order{Kind: Kind(r.byte())}
	o.ChainID = r.u64()
	copy(o.VerifyingContract[:], r.next(len(o.VerifyingContract)))
	copy(o.Maker[:], r.next(len(o.Maker)))
	o.Nonce = r.u64()
	o.Version = r.u32()
	o.Created = r.u64()
	o.Expires = r.u64()
	o.Location.Country = string(r.bytes())
	o.Location.Region = string(r.bytes())
	o.Location.City = string(r.bytes())
	o.Location.ASN = r.u32()
	o.IPType = IPType(r.byte())
	o.IPs = r.u32()
	o.Protocols = Protocols(r.byte())
	o.PricePerHour = new(big.Int).SetBytes(r.bytes())
	o.PricePerGB = new(big.Int).SetBytes(r.bytes())
	o.MinDuration = r.u32()
	o.MaxDuration = r.u32()
	o.Duration = r.u32()
	o.Bandwidth = r.u32()
	o.Unverified = r.byte() == 1
	o.Signature = append([]byte(nil), r.bytes()...)
	if r.bad || len(r.b) != 0 {
		return nil, errCorruptRecord
	}
	return o, nil
}

// recordReader takes fields off the front of b; a read past its end sets
// bad and yields zeros.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) next(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad, r.b = true, nil
		return make([]byte, max(n, 0))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *recordReader) byte() byte  { return r.next(1)[0] }
func (r *recordReader) u32() uint32 { return binary.BigEndian.Uint32(r.next(4)) }
func (r *recordReader) u64() uint64 { return binary.BigEndian.Uint64(r.next(8)) }

func (r *recordReader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.bad, r.b = true, nil
		return nil
	}
	r.b = r.b[k:]
	return r.next(int(n))
}
