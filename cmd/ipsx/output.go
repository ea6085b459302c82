package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
)

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (a *app) printCreated(w io.Writer, o *orderbook.Order) error {
	if a.json {
		return printJSON(w, o)
	}
	if err := writeString(w, "created "+o.Kind.String()+" "+o.ID().Hex()+"\n"); err != nil {
		return err
	}
	return printOrderDetail(w, o)
}

func (a *app) printOrders(w io.Writer, orders []*orderbook.Order) error {
	if a.json {
		if orders == nil {
			orders = []*orderbook.Order{}
		}
		return printJSON(w, orders)
	}
	if len(orders) == 0 {
		return writeString(w, "no orders\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tCC\tTYPE\tIPS\tPRICE/H\tPRICE/GB\tDURATION\tMBIT/S\tEXPIRES")
	for _, o := range orders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n",
			o.ID().Hex(), o.Kind, o.Location.Country, o.IPType, o.IPs,
			o.PricePerHour, o.PricePerGB, durations(o), o.Bandwidth, when(o.Expires))
	}
	return tw.Flush()
}

func printOrderDetail(w io.Writer, o *orderbook.Order) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	loc := o.Location.Country
	for _, s := range []string{o.Location.Region, o.Location.City} {
		if s != "" {
			loc += ", " + s
		}
	}
	if o.Location.ASN != 0 {
		loc += fmt.Sprintf(" (AS%d)", o.Location.ASN)
	}
	price := "price"
	bw := "bandwidth"
	if o.Kind == orderbook.KindRequest {
		price, bw = "max price", "min bandwidth"
	}
	rows := [][2]string{
		{"id", o.ID().Hex()},
		{"kind", o.Kind.String()},
		{"maker", o.Maker.Hex()},
		{"location", loc},
		{"ip type", o.IPType.String()},
		{"ips", fmt.Sprint(o.IPs)},
		{"protocols", o.Protocols.String()},
		{price + " per hour", fmt.Sprint(o.PricePerHour)},
		{price + " per GB", fmt.Sprint(o.PricePerGB)},
		{"duration", durations(o)},
		{bw, fmt.Sprintf("%d Mbit/s", o.Bandwidth)},
		{"nonce/version", fmt.Sprintf("%d/%d", o.Nonce, o.Version)},
		{"created", when(o.Created)},
		{"expires", when(o.Expires)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func printStatus(w io.Writer, st *sdk.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "version:\t%s\n", st.Version)
	fmt.Fprintf(tw, "address:\t%s\n", st.Address)
	fmt.Fprintf(tw, "peer id:\t%s\n", st.PeerID)
	fmt.Fprintf(tw, "chain:\t%d (escrow %s)\n", st.ChainID, st.Escrow)
	fmt.Fprintf(tw, "listening:\t%s\n", strings.Join(st.ListenAddrs, " "))
	fmt.Fprintf(tw, "peers:\t%d\n", st.Peers)
	reach := st.Reachability
	if st.RelayService {
		reach += ", relaying for others"
	}
	fmt.Fprintf(tw, "reachability:\t%s\n", reach)
	if st.PublicIP != "" {
		fmt.Fprintf(tw, "public ip:\t%s\n", st.PublicIP)
	}
	for _, o := range st.ObservedAddrs {
		fmt.Fprintf(tw, "seen at:\t%s (by %d peers)\n", o.Addr, o.Observers)
	}
	for _, a := range st.RelayAddrs {
		fmt.Fprintf(tw, "relayed at:\t%s\n", a)
	}
	if hp := st.HolePunch; hp.Succeeded+hp.Failed > 0 {
		line := fmt.Sprintf("%d succeeded, %d failed", hp.Succeeded, hp.Failed)
		if hp.Succeeded == 0 {
			line += ": reached through relays only, no tunnels (symmetric NAT?)"
		}
		fmt.Fprintf(tw, "hole punches:\t%s\n", line)
	}
	fmt.Fprintf(tw, "orders:\t%d in the book, %d own\n", st.Orders, st.OwnOrders)
	for _, l := range st.Listeners {
		where := "loopback"
		if l.Public {
			where = "PUBLIC (--allow-public-listen)"
		}
		fmt.Fprintf(tw, "%s:\t%s (%s)\n", l.Name, l.Addr, where)
	}
	if p := st.Proxy; p != nil {
		auth := "credentials required (ipsx proxy password)"
		if !p.Auth {
			auth = "OFF: any local user may use the proxies (--no-proxy-auth)"
		}
		fmt.Fprintf(tw, "proxy auth:\t%s\n", auth)
		for _, c := range p.Credentials {
			limit := "no cap"
			if c.Cap != "" {
				limit = "cap " + tokens(c.Cap)
			}
			fmt.Fprintf(tw, "credential:\t%s: spent %s, %s\n", c.Name, tokens(c.Spent), limit)
		}
	}
	fmt.Fprintf(tw, "uptime:\t%s (since %s)\n", st.Uptime, st.Started.UTC().Format(time.RFC3339))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Shards) == 0 {
		return writeString(w, "shards: none\n")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tPEERS\tSYNCED")
	for _, s := range st.Shards {
		fmt.Fprintf(tw, "%s\t%d\t%t\n", s.Country, s.Peers, s.Synced)
	}
	return tw.Flush()
}

func formatEvent(ev sdk.Event) string {
	t := ev.Time.UTC().Format(time.RFC3339)
	var oe sdk.OrderEvent
	if strings.HasPrefix(ev.Type, "order.") && json.Unmarshal(ev.Data, &oe) == nil && oe.Order != nil {
		s := fmt.Sprintf("%s %s %s %s %s", t, ev.Type, oe.Order.Kind, oe.Order.Location.Country, oe.Order.ID().Hex())
		if oe.Reason != "" {
			s += " (" + oe.Reason + ")"
		}
		return s
	}
	var d sdk.Deal
	var u sdk.UnmatchedEvent
	if ev.Type == "request.unmatched" && json.Unmarshal(ev.Data, &u) == nil && u.Request != nil {
		s := fmt.Sprintf("%s %s %s no candidate for %ds", t, ev.Type, u.Request.ID().Hex(), u.Seconds)
		if len(u.Candidates) > 0 && u.Candidates[0].Reason != "" {
			s += fmt.Sprintf(" (closest offer: %s: %s)", u.Candidates[0].Reason, u.Candidates[0].Detail)
		}
		return s
	}
	if ev.Type == "deal.updated" && json.Unmarshal(ev.Data, &d) == nil && d.ID != "" {
		s := fmt.Sprintf("%s %s %s %s %s: %s", t, ev.Type, shortID(d.ID), d.Status, d.Role, dealAmounts(d))
		if d.Reason != "" {
			s += " (" + d.Reason + ")"
		}
		if d.TxError != "" {
			s += " [tx error: " + d.TxError + "]"
		}
		return s
	}
	return fmt.Sprintf("%s %s %s", t, ev.Type, ev.Data)
}

func durations(o *orderbook.Order) string {
	if o.Kind == orderbook.KindOffer {
		return secs(o.MinDuration) + "-" + secs(o.MaxDuration)
	}
	return secs(o.Duration)
}

func secs(s uint32) string { return (time.Duration(s) * time.Second).String() }

func when(unix uint64) string {
	if unix > 1<<62 {
		return fmt.Sprint(unix)
	}
	return time.Unix(int64(unix), 0).UTC().Format(time.RFC3339)
}

func printPeers(w io.Writer, peers []sdk.Peer) error {
	if len(peers) == 0 {
		return writeString(w, "no peers connected\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tVIA\tDIRECTION\tADDRESS")
	for _, p := range peers {
		for _, c := range p.Conns {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.PeerID, connKind(c), c.Direction, c.Addr)
		}
	}
	return tw.Flush()
}

func connKind(c sdk.Conn) string {
	if c.Relayed {
		return "relay"
	}
	return "direct"
}

func printRequestDetail(w io.Writer, d *sdk.RequestDetail) error {
	if err := printOrderDetail(w, d.Request); err != nil {
		return err
	}
	state := "matched: some offer can fill it"
	switch {
	case d.Expired:
		state = "expired"
	case !d.Matched:
		state = "not matched: no offer can fill it"
	}
	if err := writeString(w, fmt.Sprintf("%s (%d offers in %s)\n", state, d.Offers, d.Request.Location.Country)); err != nil {
		return err
	}
	if len(d.Candidates) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFER\tPROVIDER\tTYPE\tIPS\tPRICE/H\tPRICE/GB\tSCORE\tWHY NOT")
	for _, c := range d.Candidates {
		why := "-"
		if c.Reason != "" {
			why = c.Reason + ": " + c.Detail
		}
		o := c.Offer
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", shortID(o.ID().Hex()), shortAddr(o.Maker.Hex()), o.IPType, o.IPs,
			o.PricePerHour, o.PricePerGB, c.Score, why)
	}
	return tw.Flush()
}
