package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ipsx/ipsx/orderbook"
	"github.com/ipsx/ipsx/sdk"
	"github.com/spf13/cobra"
)

// client returns an SDK client of the node's API from --api and --token
// (or <datadir>/api.token).
func (a *app) client() (*sdk.Client, error) {
	tok := a.token
	if tok == "" {
		path := filepath.Join(a.datadir, "api.token")
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no API token: %s does not exist (start the node with `ipsx node`, or set --token / IPSX_TOKEN)", path)
		}
		if err != nil {
			return nil, fmt.Errorf("read API token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	opts := []sdk.ClientOption{sdk.WithUserAgent("ipsx/" + version)}
	if a.httpClient != nil {
		opts = append(opts, sdk.WithHTTPClient(a.httpClient))
	}
	return sdk.NewClient(a.api, tok, opts...), nil
}

// explain turns an SDK error into a message for a person.
func (a *app) explain(err error) error {
	var ae *sdk.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae) && ae.StatusCode == 401:
		return fmt.Errorf("the node refused the API token (check --token, IPSX_TOKEN or %s): %s",
			filepath.Join(a.datadir, "api.token"), ae.Message)
	case errors.As(err, &ae) && ae.Code != "":
		return fmt.Errorf("error: %s (HTTP %d, %s)", ae.Message, ae.StatusCode, ae.Code)
	case errors.As(err, &ae):
		return fmt.Errorf("error: HTTP %d from %s: %s (is that an ipsx node?)", ae.StatusCode, a.api, ae.Message)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the node's API at %s: is `ipsx node` running? (%w)", a.api, err)
	}
	return err
}

// seconds is a duration flag in whole seconds: "90", "90s", "1h30m".
type seconds uint32

func (s *seconds) String() string { return (time.Duration(*s) * time.Second).String() }
func (s *seconds) Type() string   { return "duration" }
func (s *seconds) Set(v string) error {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		*s = seconds(n)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration like 90s or 1h30m", v)
	}
	if d < 0 || d%time.Second != 0 || d/time.Second > 1<<32-1 {
		return fmt.Errorf("%q is not a whole number of seconds in range", v)
	}
	*s = seconds(d / time.Second)
	return nil
}

// location flags shared by offers and requests.
type location struct {
	country, region, city string
	asn                   uint32
	protocols             []string
	ttl                   seconds
}

// flags adds the location flags; an offer's country may be left to the
// node's geolocation database, a request's may not.
func (l *location) flags(cmd *cobra.Command, countryRequired bool) {
	f := cmd.Flags()
	if countryRequired {
		f.StringVar(&l.country, "country", "", "ISO 3166-1 alpha-2 country code, e.g. DE (required)")
		_ = cmd.MarkFlagRequired("country")
	} else {
		f.StringVar(&l.country, "country", "", "ISO 3166-1 alpha-2 country code, e.g. DE (default: the node's --geoip answer for its address; a country the database does not confirm makes the offer unverified)")
	}
	f.StringVar(&l.region, "region", "", "region (optional)")
	f.StringVar(&l.city, "city", "", "city (optional)")
	f.Uint32Var(&l.asn, "asn", 0, "autonomous system number (optional)")
	f.StringSliceVar(&l.protocols, "protocols", []string{"tcp"}, "protocols carried: tcp, udp")
	l.ttl = sdk.DefaultTTL
	f.Var(&l.ttl, "ttl", "how long the order stays valid")
}

func offerCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "offer", Short: "Create and list this node's offers (providers)", Args: cobra.NoArgs}
	var (
		loc            location
		p              sdk.OfferParams
		minDur, maxDur = seconds(60), seconds(24 * 3600)
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Offer this node's IPs for rent",
		Long: `Create an offer: the node signs it with its key and publishes it to the
country's shard. Prices are token base units as decimal integers, or tokens
with the suffix tok (0.0036tok).`,
		Example: "  ipsx offer create --country DE --ip-type residential --ips 2 --price-per-hour 1000 --price-per-gb 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Country, p.Region, p.City, p.ASN = strings.ToUpper(loc.country), loc.region, loc.city, loc.asn
			p.Protocols, p.TTL = loc.protocols, uint32(loc.ttl)
			p.MinDuration, p.MaxDuration = uint32(minDur), uint32(maxDur)
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.CreateOffer(cmd.Context(), p)
			if err != nil {
				return a.explain(err)
			}
			return a.printCreated(cmd.OutOrStdout(), o)
		},
	}
	loc.flags(create, false)
	f := create.Flags()
	f.StringVar(&p.IPType, "ip-type", "residential", "residential, mobile or datacenter")
	f.Uint32Var(&p.IPs, "ips", 1, "number of IPs on offer")
	f.StringVar(&p.PricePerHour, "price-per-hour", "", "price per IP-hour, token base units or NNtok (required)")
	f.StringVar(&p.PricePerGB, "price-per-gb", "0", "price per GB, token base units or NNtok")
	f.Var(&minDur, "min-duration", "shortest rental accepted")
	f.Var(&maxDur, "max-duration", "longest rental accepted")
	f.Uint32Var(&p.Bandwidth, "bandwidth", 100, "bandwidth per IP, Mbit/s")
	_ = create.MarkFlagRequired("price-per-hour")

	cmd.AddCommand(create, a.listCommand("offers", (*sdk.Client).Offers))
	return cmd
}

func requestCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "request", Short: "Create and list this node's requests (requesters)", Args: cobra.NoArgs}
	var (
		loc      location
		p        sdk.RequestParams
		duration seconds
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Ask for IPs to rent",
		Long: `Create a request: the node signs it with its key and publishes it to the
country's shard. Maximum prices are token base units as decimal integers, or
tokens with the suffix tok (0.01tok); the node's escrow balance must cover
the request. ipsx request show tells why offers do not match it.`,
		Example: "  ipsx request create --country DE --ips 1 --duration 1h --max-price-per-hour 2000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Country, p.Region, p.City, p.ASN = strings.ToUpper(loc.country), loc.region, loc.city, loc.asn
			p.Protocols, p.TTL, p.Duration = loc.protocols, uint32(loc.ttl), uint32(duration)
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.CreateRequest(cmd.Context(), p)
			if err != nil {
				return a.explain(err)
			}
			return a.printCreated(cmd.OutOrStdout(), o)
		},
	}
	loc.flags(create, true)
	f := create.Flags()
	f.StringVar(&p.IPType, "ip-type", "any", "residential, mobile, datacenter or any")
	f.Uint32Var(&p.IPs, "ips", 1, "number of IPs wanted")
	f.Var(&duration, "duration", "rental duration, e.g. 1h (required)")
	f.StringVar(&p.MaxPricePerHour, "max-price-per-hour", "", "most paid per IP-hour, token base units or NNtok (required)")
	f.StringVar(&p.MaxPricePerGB, "max-price-per-gb", "0", "most paid per GB, token base units or NNtok")
	f.Uint32Var(&p.MinBandwidth, "min-bandwidth", 0, "least bandwidth accepted, Mbit/s")
	_ = create.MarkFlagRequired("duration")
	_ = create.MarkFlagRequired("max-price-per-hour")

	show := &cobra.Command{
		Use:   "show <id>",
		Short: "Show one of this node's requests, its best candidate offers and why the others do not match",
		Long: `request show lists the offers of the request's shard that come closest to
filling it: first those that can (in the order the node proposes to them),
then the others, each with the first reason it fails: expired, own_offer,
country, ip_type, region, city, asn, protocols, duration, bandwidth,
price_per_hour, price_per_gb, or capacity (requests of higher priority take
its IPs). The id may be a unique prefix of one of the node's requests.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := a.orderID(cmd.Context(), c, args[0], orderbook.KindRequest)
			if err != nil {
				return err
			}
			d, err := c.RequestDetail(cmd.Context(), id)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printRequestDetail(cmd.OutOrStdout(), d)
		},
	}
	cmd.AddCommand(create, show, a.listCommand("requests", (*sdk.Client).Requests))
	return cmd
}

// listCommand is `offer list` and `request list`: the node's own live
// orders of one kind.
func (a *app) listCommand(what string, list func(*sdk.Client, context.Context) ([]*orderbook.Order, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List this node's live " + what,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			orders, err := list(c, cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			return a.printOrders(cmd.OutOrStdout(), orders)
		},
	}
}

// orderID parses an order id, or resolves a prefix of one (at least 0x
// and 4 hex digits, such as the short ids printed) against the node's own
// offers and requests (kind: only those of one kind; 0: both).
func (a *app) orderID(ctx context.Context, c *sdk.Client, s string, kind orderbook.Kind) (common.Hash, error) {
	var h common.Hash
	if len(s) == 66 && strings.HasPrefix(s, "0x") && h.UnmarshalText([]byte(s)) == nil {
		return h, nil
	}
	hexPart, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	if !ok || len(hexPart) < 4 || len(hexPart) > 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return h, fmt.Errorf("%q is not an order id (0x and 64 hex digits, or a unique prefix of one of this node's orders, at least 0x and 4)", s)
	}
	var own []*orderbook.Order
	for _, k := range []orderbook.Kind{orderbook.KindOffer, orderbook.KindRequest} {
		if kind != 0 && k != kind {
			continue
		}
		list := c.Offers
		if k == orderbook.KindRequest {
			list = c.Requests
		}
		orders, err := list(ctx)
		if err != nil {
			return h, a.explain(err)
		}
		own = append(own, orders...)
	}
	var found []string
	for _, o := range own {
		if id := o.ID().Hex(); strings.HasPrefix(strings.ToLower(id), "0x"+hexPart) {
			found = append(found, id)
		}
	}
	what := "of this node's orders"
	if kind != 0 {
		what = "of this node's " + kind.String() + "s"
	}
	switch len(found) {
	case 0:
		return h, fmt.Errorf("no id %s starts with %s (a full id of 0x and 64 hex digits names any order)", what, s)
	case 1:
		return common.HexToHash(found[0]), nil
	}
	return h, fmt.Errorf("%s is ambiguous: %d %s start with it (%s)", s, len(found), strings.TrimPrefix(what, "of "), strings.Join(found, ", "))
}

func orderCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "order", Short: "Show, cancel and import orders", Args: cobra.NoArgs}
	show := &cobra.Command{
		Use:   "show <id>",
		Short: "Show one order of the book (a prefix names one of the node's own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := a.orderID(cmd.Context(), c, args[0], 0)
			if err != nil {
				return err
			}
			o, err := c.Order(cmd.Context(), id)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), o)
			}
			return printOrderDetail(cmd.OutOrStdout(), o)
		},
	}
	cancel := &cobra.Command{
		Use:   "cancel <id>",
		Short: "Cancel one of this node's orders",
		Long: `Cancel an order: the node signs a cancel and publishes it; the order leaves
every book. The id may be given in full or as a unique prefix of one of the
node's orders, such as 0xf64a473e.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := a.orderID(cmd.Context(), c, args[0], 0)
			if err != nil {
				return err
			}
			cc, err := c.CancelOrder(cmd.Context(), id)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), cc)
			}
			return writeString(cmd.OutOrStdout(), "cancelled "+cc.OrderID.Hex()+"\n")
		},
	}
	imp := &cobra.Command{
		Use:   "import <file|->",
		Short: "Import an order signed elsewhere",
		Long: `Import an order in the JSON wire form (docs/orders.md), signed by another
key or tool, from a file or from standard input ("-"). The node validates it,
signature included, stores it and publishes it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				b   []byte
				err error
			)
			if args[0] == "-" {
				b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
			} else {
				b, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read order: %w", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			o, err := c.ImportOrderJSON(cmd.Context(), b)
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), o)
			}
			return writeString(cmd.OutOrStdout(), "imported "+o.Kind.String()+" "+o.ID().Hex()+"\n")
		},
	}
	cmd.AddCommand(show, cancel, imp)
	return cmd
}

func bookCommand(a *app) *cobra.Command {
	var country, kind string
	cmd := &cobra.Command{
		Use:     "book",
		Short:   "Show the order book of a country",
		Long:    "Show the orders the node holds for a country's shard, cheapest first.",
		Example: "  ipsx book --country DE --kind offer",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var kinds []orderbook.Kind
			if kind != "" {
				k, err := orderbook.ParseKind(kind)
				if err != nil {
					return fmt.Errorf("--kind %q: want offer or request", kind)
				}
				kinds = append(kinds, k)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			orders, err := c.Book(cmd.Context(), strings.ToUpper(country), kinds...)
			if err != nil {
				return a.explain(err)
			}
			return a.printOrders(cmd.OutOrStdout(), orders)
		},
	}
	cmd.Flags().StringVar(&country, "country", "", "ISO 3166-1 alpha-2 country code, e.g. DE (required)")
	cmd.Flags().StringVar(&kind, "kind", "", "only offers or only requests")
	_ = cmd.MarkFlagRequired("country")
	return cmd
}

func statusCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the node's status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), st)
			}
			h, _ := c.Health(cmd.Context())
			if err := printStatus(cmd.OutOrStdout(), st); err != nil {
				return err
			}
			return printOps(cmd.OutOrStdout(), st, h)
		},
	}
}

func eventsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "Follow the node's events until interrupted",
		Long: `Print the node's events (order.added, order.removed, deal.updated, ...) as
they happen, one per line; a deal's line comes when its status, payments,
pending transaction or reason change, with the amounts (paid or earned,
bytes, settled, refunded). With --json, every event, one JSON object per
line. A broken stream is resumed where it stopped (Last-Event-ID);
stream.reset says events may have been missed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			events, err := c.Events(cmd.Context())
			if err != nil {
				return a.explain(err)
			}
			w := cmd.OutOrStdout()
			var p eventPrinter
			for ev := range events {
				if a.json {
					b, _ := json.Marshal(ev)
					if err := writeString(w, string(b)+"\n"); err != nil {
						return err
					}
					continue
				}
				line := p.format(ev)
				if line == "" {
					continue
				}
				if err := writeString(w, line+"\n"); err != nil {
					return err
				}
				if ev.Type == "error" {
					return fmt.Errorf("event stream ended: %s", ev.Data)
				}
			}
			return nil
		},
	}
}
