package sdk

import "time"

// Deal is one deal as the node sees it (GET /v1/deals, /v1/deals/{id}, and
// the data of deal.updated events). Amounts are token base units as
// decimal strings; statuses are lower-case words: proposed, accepted,
// rejected, funded, active, completed, settled, refunded, cancelled,
// expired (and none for a side not heard from yet).
type Deal struct {
	ID     string `json:"id"`
	Role   string `json:"role"`   // this node's side: provider or requester
	Status string `json:"status"` // derived from both sides' statuses
	// ProviderStatus and RequesterStatus are the two sides' statuses.
	ProviderStatus  string `json:"providerStatus"`
	RequesterStatus string `json:"requesterStatus"`
	// Reason says why a deal was refused or ended (empty while it runs);
	// Detail is the provider's free text on a reject.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`

	OfferID      string    `json:"offerId"`
	RequestID    string    `json:"requestId"`
	Provider     string    `json:"provider"`
	Requester    string    `json:"requester"`
	IPs          uint32    `json:"ips"`
	PricePerHour string    `json:"pricePerHour"`
	PricePerGB   string    `json:"pricePerGB"`
	MaxAmount    string    `json:"maxAmount"`
	Start        time.Time `json:"start"`
	Deadline     time.Time `json:"deadline"`

	// Paid is the latest voucher's cumulative amount; Bytes the bytes
	// metered on this side.
	Paid    string   `json:"paid"`
	Bytes   uint64   `json:"bytes"`
	Voucher *Voucher `json:"voucher,omitempty"`
	// Pending is the escrow transaction submitted and not yet seen on
	// chain (open, settle, refund, cancel), if any; TxError the last
	// failure of a transaction (a revert with its reason).
	Pending string `json:"pending,omitempty"`
	TxError string `json:"txError,omitempty"`
	// PeerStatus is the counterparty's own status, as it last said;
	// Unacked counts this side's messages it has not acknowledged yet.
	PeerStatus string `json:"peerStatus,omitempty"`
	Unacked    int    `json:"unacked,omitempty"`
	// Settled, Commission and Refunded are the chain's outcome.
	Settled    string `json:"settled,omitempty"`
	Commission string `json:"commission,omitempty"`
	Refunded   string `json:"refunded,omitempty"`

	History []DealEntry `json:"history,omitempty"`
	// Geo is the requester's check of the provider's address, once made.
	Geo *GeoCheck `json:"geo,omitempty"`
}

// Voucher is the latest signed voucher of a deal.
type Voucher struct {
	Amount      string `json:"amount"`
	Bytes       uint64 `json:"bytes"`
	ConnLogHash string `json:"connLogHash"`
	Signature   string `json:"signature"`
}

// DealEntry is one line of a deal's history.
type DealEntry struct {
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	From   string    `json:"from"`   // local status before
	To     string    `json:"to"`     // local status after
	Status string    `json:"status"` // derived deal status after
	Reason string    `json:"reason,omitempty"`
	Detail string    `json:"detail,omitempty"` // e.g. a failed transaction's error
}
