package node_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ipsx/ipsx/node"
	"github.com/ipsx/ipsx/testnet"
)

// slowServer serves, on loopback, a body of size bytes in chunks spread
// over about d, so that a download through the tunnel lasts long enough
// for the dashboard to show its traffic grow.
func slowServer(t *testing.T, size int, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 64 << 10
	steps := max(size/chunk, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(steps*chunk))
		buf := make([]byte, chunk)
		tick := time.NewTicker(d / time.Duration(steps))
		defer tick.Stop()
		for i := 0; i < steps; i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// browser starts headless Chromium for a test, or skips it with the reason.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium in PATH (make tools installs Debian's chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // as root, Chromium refuses to start sandboxed
		chromedp.WindowSize(1400, 1800),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Skipf("chromium cannot start: %v", err)
	}
	return bctx
}

// page drives one tab of the dashboard.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string

	mu   sync.Mutex // guards errs
	errs []string   // the page's uncaught exceptions and console.error calls
}

// watchConsole collects the tab's script errors until the test ends.
func (p *page) watchConsole() {
	ctx, cancel := context.WithCancel(p.ctx)
	msgs := chromedp.Console(ctx)
	var wg sync.WaitGroup
	p.t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// The browser's own log (a 404 for /favicon.ico) has a
			// Source; the page's script errors have none.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				p.mu.Lock()
				p.errs = append(p.errs, m.String())
				p.mu.Unlock()
			}
		}
	})
}

// noScriptErrors fails the test if the page's scripts failed.
func (p *page) noScriptErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("%s: script error: %s", p.name, e)
	}
}

// eval runs a JavaScript expression in the tab.
func evalJS[T any](p *page, expr string) (T, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
}

// await polls a JavaScript condition (a boolean expression) until it
// holds; on timeout it saves a screenshot and fails with the page's text.
func (p *page) await(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 90*time.Second)
	defer cancel()
	err := testnet.Await(ctx, func() error {
		ok, err := evalJS[bool](p, cond)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("not yet: %s", cond)
		}
		return nil
	})
	if err != nil {
		text, _ := evalJS[string](p, "document.body.innerText")
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %s never: %v\npage:\n%s", p.name, what, err, text)
	}
}

// text reads an expression's string value.
func (p *page) text(expr string) string {
	p.t.Helper()
	s, err := evalJS[string](p, expr)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	return s
}

// shot saves a full-page screenshot in the test's temporary directory and
// returns its path.
func (p *page) shot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(p.t.TempDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("%s: screenshot %s", p.name, path)
	return path
}

// login opens a node's dashboard in a new tab and logs in with its token.
func login(t *testing.T, bctx context.Context, name string, n *node.Node) *page {
	t.Helper()
	tab, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: tab, name: name}
	p.watchConsole()
	base := "http://" + n.APIAddr().String()
	if err := chromedp.Do(tab, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	// Not logged in: the login page.
	p.await("the login page", `location.pathname === "/ui/login" && !!document.querySelector("#token")`)
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("#token"), n.Token()),
		chromedp.Click(chromedp.CSS("#login")),
	); err != nil {
		t.Fatal(err)
	}
	p.await("the dashboard", `location.pathname === "/ui/" && document.querySelector("#conn").textContent === "live"`)
	return p
}

// TestDashboard drives the web dashboard in headless Chromium against a
// running testnet: log in with the token (a wrong one is refused), see
// the provider's offer appear in the book, place a request from the
// form, watch the deal go active, see its traffic grow while curl
// downloads through the proxy, close it (after the confirmation) and see
// the provider's earnings update. A screenshot is saved (its path is
// logged); with IPSX_DASHBOARD_PNG set, the one of the active deal is also
// written there (that is how docs/dashboard.png is made).
func TestDashboard(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (make tools installs it)")
	}
	_, tn := startDealNet(t, 2, "DE")
	ctx := awaitCtx(t)
	prov, req := tn.Members[0].Node, tn.Members[1].Node
	if err := tn.AwaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	bctx := browser(t, ctx)

	// A wrong token gets the login page again, with the reason.
	bad, cancel := chromedp.NewContext(bctx)
	defer cancel()
	wrong := &page{t: t, ctx: bad, name: "wrong token"}
	if err := chromedp.Do(bad, chromedp.Navigate("http://"+req.APIAddr().String()+"/ui/login"),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	wrong.await("the refusal", `!!document.querySelector("#login-error") && document.querySelector("#login-error").textContent.includes("wrong token")`)

	rq := login(t, bctx, "requester", req)
	rq.await("the shard tab", `!!document.querySelector('#book-tabs button[data-shard="DE"]')`)

	// The provider's offer appears in the requester's book.
	offer, err := prov.CreateOffer(ctx, dealOffer("DE", 2, 1_000_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	rq.await("the provider's offer", fmt.Sprintf(`!!document.querySelector('#book tr[data-order-id="%s"]')`, offer.ID().Hex()))

	// A request placed from the form becomes an active deal.
	if err := chromedp.Do(rq.ctx,
		chromedp.SetValue(chromedp.CSS("#req-country"), "DE"),
		chromedp.SetValue(chromedp.CSS("#req-duration"), "300"),
		chromedp.SetValue(chromedp.CSS("#req-max-hour"), "0.036"),
		chromedp.SetValue(chromedp.CSS("#req-max-gb"), "0.000000000001"),
		chromedp.Click(chromedp.CSS("#req-submit")),
	); err != nil {
		t.Fatal(err)
	}
	rq.await("the request", `!!document.querySelector("#req-result").getAttribute("data-order-id")`)
	requestID := rq.text(`document.querySelector("#req-result").getAttribute("data-order-id")`)
	row := fmt.Sprintf(`document.querySelector('#deals tr[data-request-id="%s"]')`, requestID)
	rq.await("the deal going active", row+` && `+row+`.querySelector(".status").textContent.startsWith("active")`)
	dealID := rq.text(row + `.getAttribute("data-deal-id")`)
	rq.await("the request's match column naming the deal", fmt.Sprintf(`document.querySelector('#own tr[data-order-id="%s"] .match').textContent.includes("%s")`, requestID, dealID[:10]))

	// A request no offer can fill says why.
	if err := chromedp.Do(rq.ctx,
		chromedp.SetValue(chromedp.CSS("#req-max-hour"), "0.000000000000000001"),
		chromedp.Click(chromedp.CSS("#req-submit")),
	); err != nil {
		t.Fatal(err)
	}
	rq.await("the cheap request", fmt.Sprintf(`document.querySelector("#req-result").getAttribute("data-order-id") !== "%s"`, requestID))
	cheap := rq.text(`document.querySelector("#req-result").getAttribute("data-order-id")`)
	rq.await("why the cheap request is not matched", fmt.Sprintf(`document.querySelector('#own tr[data-order-id="%s"] .match').textContent.startsWith("no offer in DE at ≤ 0.000000000000000001 tok per IP-hour")`, cheap))

	// Traffic: curl downloads through the proxy while the dashboard
	// shows the deal's bytes grow.
	url := slowServer(t, 8<<20, 6*time.Second)
	done := make(chan error, 1)
	go func() {
		out, err := exec.CommandContext(ctx, "curl", "-sS", "-f", "--max-time", "60", "-o", "/dev/null",
			"--proxy", "http://"+req.HTTPProxyAddr().String(), "--proxy-user", "country-DE:"+req.ProxyPassword(), url).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("curl: %v: %s", err, out)
		}
		done <- err
	}()
	bytesOf := row + `.querySelector(".bytes").getAttribute("data-bytes")`
	var seen []int64
	for len(seen) < 3 {
		rq.await("more traffic", fmt.Sprintf(`Number(%s) > %d`, bytesOf, last(seen)))
		v, _ := strconv.ParseInt(rq.text(bytesOf), 10, 64)
		seen = append(seen, v)
	}
	t.Logf("the dashboard showed the deal's bytes grow: %v", seen)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rq.await("all the bytes", fmt.Sprintf(`Number(%s) >= %d`, bytesOf, 8<<20))
	rq.await("the spending", `BigInt(document.querySelector("#spent-total").getAttribute("data-value")) > 0n`)
	rq.await("the chart", `!!document.querySelector("#chart-spent")`)
	active := rq.shot("dashboard-active")

	// The provider's dashboard: its earnings before and after the close.
	pv := login(t, bctx, "provider", prov)
	pv.await("the provider's deal", fmt.Sprintf(`!!document.querySelector('#deals tr[data-deal-id="%s"]')`, dealID))
	pv.await("the exit policy", `document.querySelector("#exit").textContent.includes("127.0.0.11")`)
	if s := pv.text(`document.querySelector("#settled-total").getAttribute("data-value")`); s != "0" {
		t.Fatalf("settled before the close: %s", s)
	}

	// Close from the requester's dashboard, through the confirmation.
	if err := chromedp.Do(rq.ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#deals tr[data-deal-id="%s"] button.close`, dealID)))); err != nil {
		t.Fatal(err)
	}
	rq.await("the confirmation", `document.querySelector("#confirm").open`)
	if err := chromedp.Do(rq.ctx, chromedp.Click(chromedp.CSS("#confirm-ok"))); err != nil {
		t.Fatal(err)
	}
	rq.await("the deal settled", row+` && `+row+`.querySelector(".status").textContent.startsWith("settled")`)
	pv.await("the provider's earnings", `BigInt(document.querySelector("#settled-total").getAttribute("data-value")) > 0n && BigInt(document.querySelector("#earned-total").getAttribute("data-value")) > 0n`)
	earned := pv.text(`document.querySelector("#settled-total").textContent`)
	t.Logf("the provider's dashboard shows %s settled", earned)

	rq.shot("dashboard")
	pv.shot("dashboard-provider")
	rq.noScriptErrors()
	pv.noScriptErrors()
	if dst := os.Getenv("IPSX_DASHBOARD_PNG"); dst != "" && active != "" {
		b, err := os.ReadFile(active)
		if err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func last(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1]
}
