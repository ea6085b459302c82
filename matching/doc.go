// Package matching owns the deterministic matcher: a pure function from a
// snapshot of the order book and a time to a ranked list of candidate deals
// (fills). Every peer that holds the same set of orders computes the same
// fills, whatever order the orders arrived in and whoever runs it.
//
// The package must not do I/O, read a clock (time is an argument), start
// goroutines, log, depend on map iteration order or on the order of its
// input, or look at reputation (that is local to each node and applied by the
// caller to the candidates it gets). Its fills are candidates only: the deal
// negotiation in agreement/node is authoritative, and the provider is the
// source of truth for its remaining capacity.
//
// # What is matched
//
// An offer O can fill a request R, both live at now, when all of these hold:
//
//   - O is an offer and R a request, and their makers differ (no self-deals);
//   - O.Location.Country == R.Location.Country; R's Region and City, when not
//     empty, and R's ASN, when not 0, equal O's (exact, case-sensitive);
//   - R.IPType is IPAny or equals O.IPType;
//   - O.Protocols has every protocol of R.Protocols;
//   - O.MinDuration <= R.Duration <= O.MaxDuration;
//   - O.Bandwidth >= R.Bandwidth;
//   - O.PricePerHour <= R.PricePerHour and O.PricePerGB <= R.PricePerGB (the
//     request carries its maximum prices; a fill is struck at the offer's
//     asking prices).
//
// An order is live at now when its Expires is after now+Params.ExpiryMargin
// (unix seconds, as orderbook.Validate counts them: Expires <= now is
// expired).
//
// # Why not
//
// Explain answers the other question: for each offer of a snapshot, the
// first of the checks above that it fails for a request (Reason, in the
// order expiry, own offer, country, IP type, region, city, ASN,
// protocols, duration, bandwidth, price per IP-hour, price per GB), or
// capacity when Match gives all its IPs to requests of higher priority
// while the request stays short. Its candidates are Candidates' offers.
// Reputation is not among the reasons: it ranks candidates in the node,
// it never rules one out here.
//
// # Priority
//
// Requests are served one after another in a total order:
//
//  1. higher maximum price per IP-hour first,
//  2. then higher maximum price per GB,
//  3. then earlier signed Created,
//  4. then lower order id (the EIP-712 digest, bytes compared as unsigned).
//
// For each request, the eligible offers are taken cheapest first:
//
//  1. lower asking price per IP-hour,
//  2. then lower asking price per GB,
//  3. then earlier signed Created,
//  4. then lower order id.
//
// A request takes as many IPs as it still needs from each offer in turn
// (so it may be filled from several offers, and an offer with several IPs
// may fill several requests) until it is filled, the offers run out, or
// Params.MaxSplit offers have been used; a request that cannot be filled
// completely keeps its partial fills. No offer gives more IPs than it has,
// and no request gets more than it asks for.
//
// # The snapshot
//
// A Snapshot is a set: duplicates (equal order ids) count once, and of
// several versions of one series (same Maker and Nonce, the rule of the
// book), only the highest Version is used, ties broken by the lower id, so a
// peer that still holds a superseded version does not oversell the offer.
// Orders the matcher cannot make sense of (unknown kind, no IPs, a missing,
// negative or over-256-bit price, an offer without a concrete IP type) are
// left out; the matcher expects validated orders but never panics on others.
//
// # Cost
//
// NewSnapshot reads each order once, in the order given, and copies what
// the matcher needs into compact entries that hold no pointers (regions,
// cities and countries become numbers); it finds superseded versions and
// sorts the requests and each country's offers by radix on their prices
// and created times (comparing orders only for ties, and for prices wider
// than 64 bits), lists the offers by IP type, region, city and ASN, and
// prepares each request's search. Order ids (EIP-712 digests, six Keccak
// permutations each) are computed only when needed, and then kept: for a
// tie on prices and created time, for two orders of one series, and for
// the orders of the fills and candidates handed out. On a 100,000-order
// shard with 44,000 fills the ids of the 50,000 orders in them take more
// than the rest of NewSnapshot and Match together (over 100 ms of Keccak
// alone on the bench machine); a caller that holds the ids already hands
// them in with NewSnapshotWithIDs, and no digest is computed. A book keys
// its orders by id: the node takes the ids with the orders from
// orderbook's Book.ListWithIDs.
//
// Match gives each request the shortest list that can hold its offers and
// searches a tree over that list: blocks of eight offers, scanned in a
// row, under a segment tree whose nodes carry the most IPs any offer below
// has left and bounds for every filter (sold-out offers drop out of the
// bounds). It skips subtrees that cannot hold an eligible offer, goes on
// from its last fill rather than from the root, and stops at the first
// offer dearer than the request's maximum price per IP-hour. Bounds are a
// heuristic, not a guarantee: a book built so that no subtree can be ruled
// out but no offer qualifies still costs a scan, and since each bound is
// taken filter by filter, the search still visits on the order of a
// hundred nodes and leaves per fill on a book like the benchmark's. The
// trees are built afresh by each Match, in time linear in the offers.
package matching
