package node

// For TestGossipDoc: what docs/orders.md states of the gossip.
var (
	MessageIDOf = messageID
	MaxRPCSize  = maxRPCSize
)
