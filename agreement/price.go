package agreement

import "math/big"

const (
	secondsPerHour = 3600
	bytesPerGB     = 1_000_000_000
)

var costDenominator = big.NewInt(secondsPerHour * bytesPerGB)

// Cost is what secs seconds of service and n bytes cost under the terms, in
// token base units:
//
//	ceil((IPs·PricePerIPHour·secs·10^9 + PricePerGB·n·3600) / (3600·10^9))
//
// All in big.Int, rounded up once over the exact rational sum, so the payer
// never pays less than the exact price and at most one base unit more. The
// result is not capped at MaxAmount (see CappedCost). Nil prices count as 0.
//
// Cost is cumulative: the cost of an interval is Cost at its end minus Cost
// at its start, so rounding never accumulates across vouchers.
func (t Terms) Cost(secs, n uint64) *big.Int {
	num := new(big.Int)
	if t.PricePerIPHour != nil {
		num.Mul(t.PricePerIPHour, new(big.Int).SetUint64(uint64(t.IPs)))
		num.Mul(num, new(big.Int).SetUint64(secs))
		num.Mul(num, big.NewInt(bytesPerGB))
	}
	if t.PricePerGB != nil {
		b := new(big.Int).Mul(t.PricePerGB, new(big.Int).SetUint64(n))
		num.Add(num, b.Mul(b, big.NewInt(secondsPerHour)))
	}
	return ceilDiv(num, costDenominator)
}

// CappedCost is Cost capped at MaxAmount: nobody can be paid more than the
// escrow locked.
func (t Terms) CappedCost(secs, n uint64) *big.Int {
	c := t.Cost(secs, n)
	if t.MaxAmount != nil && c.Cmp(t.MaxAmount) > 0 {
		c.Set(t.MaxAmount)
	}
	return c
}

// Duration is the service window in seconds (Deadline − Start, or 0).
func (t Terms) Duration() uint64 {
	if t.Deadline <= t.Start {
		return 0
	}
	return t.Deadline - t.Start
}

func ceilDiv(num, den *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}
