package pay

import (
	"context"
	"errors"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
	"github.com/x402-mcp/x402-mcp/localnet"
	"github.com/x402-mcp/x402-mcp/policy"
	"github.com/x402-mcp/x402-mcp/x402"
)

const (
	jokePrice   = 20000 // /v1/joke, 0.02 USDC
	approvalTTL = 10 * time.Minute
)

var outOfBand = Approvals{OutOfBand: true, TTL: approvalTTL}

// askAbove is the default policy asking the human above 0.015 USD: the
// joke (0.02) needs approval, the weather (0.01) does not.
func askAbove() policy.Policy {
	p := policy.Default()
	p.ApprovalAbove = policy.MustUSD("0.015")
	return p
}

// approvalRig is a local network and a client with a ledger the test
// holds. The ledger and the client have clocks of their own, both
// starting now, that move only when the test moves them.
type approvalRig struct {
	*testNet
	led                  *ledger.Ledger
	c                    *Client
	ledgerNow, clientNow *testClock
	joke                 Request
}

func newApprovalRig(t *testing.T, routes []localnet.Route, a Approvals) *approvalRig {
	t.Helper()
	n := startNet(t, localnet.NetworkConfig{Routes: routes}, funding)
	rig := &approvalRig{testNet: n, ledgerNow: newTestClock(), clientNow: newTestClock(), joke: Request{URL: n.APIURL + "/v1/joke"}}
	rig.clientNow.ns.Store(rig.ledgerNow.ns.Load())
	rig.led = openLedgerAt(t, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: rig.ledgerNow.Now})
	rig.c = n.clientFor(t, Config{Policy: askAbove(), Ledger: rig.led, Approvals: a, Now: rig.clientNow.Now})
	return rig
}

// pricedJoke is the joke route with its price read from price at every
// request, so a test can change the terms between two calls.
func pricedJoke(price *atomic.Int64) []localnet.Route {
	price.Store(jokePrice)
	return rewrite("/v1/joke", func(o map[string]any) { o["maxAmountRequired"] = strconv.FormatInt(price.Load(), 10) })
}

// needsApproval returns err as an *ApprovalNeededError, failing the test
// if it is anything else.
func needsApproval(t *testing.T, err error) *ApprovalNeededError {
	t.Helper()
	var need *ApprovalNeededError
	if !errors.As(err, &need) {
		t.Fatalf("err = %T %v; want *ApprovalNeededError", err, err)
	}
	return need
}

// pending asks for approval of the joke out of band: the first Fetch is
// refused and its need is recorded.
func (rig *approvalRig) pending(t *testing.T) ledger.Approval {
	t.Helper()
	ctx := context.Background()
	_, err := rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	ap, err := rig.c.RequestApproval(ctx, need, "approval_test")
	if err != nil {
		t.Fatal(err)
	}
	if ap.State != ledger.ApprovalPending || ap.Binding != need.Binding || ap.RequestKey != need.RequestKey || ap.Amount.Int64() != jokePrice {
		t.Fatalf("recorded approval %+v for need %+v", ap, need)
	}
	return ap
}

// approval reads an approval back from the ledger.
func (rig *approvalRig) approval(t *testing.T, id string) ledger.Approval {
	t.Helper()
	a, err := rig.led.ApprovalByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// nothingSigned fails the test unless no signature was made, no balance
// moved since (payer0, payee0) and the ledger holds no payment.
func (rig *approvalRig) nothingSigned(t *testing.T, payer0, payee0 *big.Int) {
	t.Helper()
	if got := rig.signer.calls.Load(); got != 0 {
		t.Errorf("the signer was called %d times", got)
	}
	rig.moved(t, payer0, payee0, 0)
	if got := recordCount(t, rig.led); got != 0 {
		t.Errorf("the ledger holds %d payments", got)
	}
}

// TestOutOfBandApprovalPaysOnce: a payment that needs approval is asked
// for in the ledger, is refused while pending, pays exactly once after the
// human approves it, and is needed again after that.
func TestOutOfBandApprovalPaysOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newApprovalRig(t, nil, outOfBand)
	payer0, payee0 := rig.balances(t)

	ap := rig.pending(t)
	listed, err := rig.led.Approvals(ctx, false, 0)
	if err != nil || len(listed) != 1 || listed[0].ID != ap.ID {
		t.Fatalf("pending approvals %+v, %v; want only %s", listed, err, ap.ID)
	}

	_, err = rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	if need.Binding != ap.Binding || need.Prior != nil || need.Changed {
		t.Errorf("while pending: binding %x (want %x), prior %+v, changed %v", need.Binding, ap.Binding, need.Prior, need.Changed)
	}
	if again, err := rig.c.RequestApproval(ctx, need, "approval_test"); err != nil || again.ID != ap.ID {
		t.Errorf("asking again while pending recorded %+v, %v; want %s again", again, err, ap.ID)
	}
	rig.nothingSigned(t, payer0, payee0)

	if _, err := rig.led.Decide(ctx, ap.ID, true); err != nil {
		t.Fatal(err)
	}
	res, err := rig.c.Fetch(ctx, rig.joke)
	if err != nil || res.Payment == nil || !res.Payment.Settled || res.Payment.Amount.String() != strconv.Itoa(jokePrice) {
		t.Fatalf("Fetch after approval: %+v, %v", res, err)
	}
	if res.Judgement.Verdict != VerdictNeedsApproval {
		t.Errorf("the payment was made on verdict %q", res.Judgement.Verdict)
	}
	rig.moved(t, payer0, payee0, jokePrice)
	used := rig.approval(t, ap.ID)
	if used.State != ledger.ApprovalUsed || used.RecordID != res.Payment.LedgerID {
		t.Errorf("approval after paying: state %s, record %d; want used by payment %d", used.State, used.RecordID, res.Payment.LedgerID)
	}
	if rec, err := rig.led.Get(ctx, res.Payment.LedgerID); err != nil || rec.State != ledger.Settled || rec.Amount.Int64() != jokePrice {
		t.Errorf("ledger record %+v, %v", rec, err)
	}

	_, err = rig.c.Fetch(ctx, rig.joke)
	needsApproval(t, err)
	if got := rig.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures; one approval must pay once", got)
	}
	rig.moved(t, payer0, payee0, jokePrice)
	if got := recordCount(t, rig.led); got != 1 {
		t.Errorf("the ledger holds %d payments, want 1", got)
	}
}

// TestOutOfBandDenied: a denial is final for those terms; nothing moves.
func TestOutOfBandDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newApprovalRig(t, nil, outOfBand)
	payer0, payee0 := rig.balances(t)
	ap := rig.pending(t)
	if _, err := rig.led.Decide(ctx, ap.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err := rig.c.Fetch(ctx, rig.joke)
	var denied *ApprovalDeniedError
	if !errors.As(err, &denied) || denied.Approval.ID != ap.ID {
		t.Fatalf("err = %T %v; want *ApprovalDeniedError for %s", err, err, ap.ID)
	}
	rig.nothingSigned(t, payer0, payee0)
}

// TestOutOfBandExpired: an approval past its TTL pays nothing, whichever
// clock sees it first: the ledger's, which no longer offers it as usable
// (and would refuse it in the reservation too; see the ledger's tests), or
// the client's as well. Either way the human is asked again.
func TestOutOfBandExpired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		clientMoves bool
		want        func(t *testing.T, err error)
	}{
		{name: "both clocks", clientMoves: true, want: func(t *testing.T, err error) { needsApproval(t, err) }},
		{name: "only the ledger's clock", want: func(t *testing.T, err error) { needsApproval(t, err) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rig := newApprovalRig(t, nil, outOfBand)
			payer0, payee0 := rig.balances(t)
			ap := rig.pending(t)
			if _, err := rig.led.Decide(ctx, ap.ID, true); err != nil {
				t.Fatal(err)
			}
			rig.ledgerNow.Advance(approvalTTL + time.Second)
			if tc.clientMoves {
				rig.clientNow.Advance(approvalTTL + time.Second)
			}
			_, err := rig.c.Fetch(ctx, rig.joke)
			tc.want(t, err)
			rig.nothingSigned(t, payer0, payee0)
			if a := rig.approval(t, ap.ID); a.State != ledger.ApprovalApproved || a.Status(rig.ledgerNow.Now()) != "expired" {
				t.Errorf("approval %s is %s (%s), want approved and expired", a.ID, a.State, a.Status(rig.ledgerNow.Now()))
			}
		})
	}
}

// TestOutOfBandTermsChanged: an approval given at one price pays nothing
// at another; the refusal names the approval as Prior, and the approval
// is left unused, so it still pays its own terms.
func TestOutOfBandTermsChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var price atomic.Int64
	rig := newApprovalRig(t, pricedJoke(&price), outOfBand)
	payer0, payee0 := rig.balances(t)
	ap := rig.pending(t)
	if _, err := rig.led.Decide(ctx, ap.ID, true); err != nil {
		t.Fatal(err)
	}

	price.Store(30000)
	_, err := rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	if need.Prior == nil || need.Prior.ID != ap.ID || need.Prior.State != ledger.ApprovalApproved {
		t.Errorf("Prior = %+v, want approval %s", need.Prior, ap.ID)
	}
	if need.Binding == ap.Binding || need.RequestKey != ap.RequestKey || need.Ask.AmountAtomic != "30000" {
		t.Errorf("need binding %x key %x amount %s; approval binding %x key %x", need.Binding, need.RequestKey, need.Ask.AmountAtomic, ap.Binding, ap.RequestKey)
	}
	rig.nothingSigned(t, payer0, payee0)
	if a := rig.approval(t, ap.ID); a.State != ledger.ApprovalApproved {
		t.Errorf("the refused payment changed the approval to %s", a.State)
	}
	// The agent relays the new terms: a second approval, pending, is now
	// the newest for this request.
	newer, err := rig.c.RequestApproval(ctx, need, "approval_test")
	if err != nil || newer.ID == ap.ID {
		t.Fatalf("approval for the new terms: %+v, %v", newer, err)
	}

	// Back at the approved price: the first approval covers exactly these
	// terms and pays, although a newer one (for other terms) is pending.
	price.Store(jokePrice)
	res, err := rig.c.Fetch(ctx, rig.joke)
	if err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Fatalf("Fetch at the approved price: %+v, %v", res, err)
	}
	rig.moved(t, payer0, payee0, jokePrice)
	if a := rig.approval(t, ap.ID); a.State != ledger.ApprovalUsed || a.RecordID != res.Payment.LedgerID {
		t.Errorf("approval %s is %s with record %d, want used by %d", a.ID, a.State, a.RecordID, res.Payment.LedgerID)
	}
}

// TestOutOfBandApprovalRace: two processes (two clients, each with its own
// handle on the same ledger file) fetch at once after one approval. Each
// round exactly one pays; the other is refused without signing.
func TestOutOfBandApprovalRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := startNet(t, localnet.NetworkConfig{}, funding)
	path := filepath.Join(t.TempDir(), "ledger.db")
	var (
		leds    [2]*ledger.Ledger
		clients [2]*Client
	)
	for i := range clients {
		leds[i] = openLedgerAt(t, path, ledger.Options{})
		clients[i] = n.clientFor(t, Config{Policy: askAbove(), Ledger: leds[i], Approvals: outOfBand})
	}
	// The human decides through a third handle, as `x402-mcp approve` does.
	human := openLedgerAt(t, path, ledger.Options{})
	joke := Request{URL: n.APIURL + "/v1/joke"}
	payer0, payee0 := n.balances(t)

	const rounds = 5
	for round := range rounds {
		_, err := clients[0].Fetch(ctx, joke)
		ap, err := clients[0].RequestApproval(ctx, needsApproval(t, err), "approval_test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := human.Decide(ctx, ap.ID, true); err != nil {
			t.Fatal(err)
		}

		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			res   [2]*Result
			errs  [2]error
		)
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = c.Fetch(ctx, joke)
			}()
		}
		close(start)
		wg.Wait()
		// Each client records the delivery off the reply path; the next
		// round's fetch, through the other handle, must see it (another
		// process would, a moment later).
		for _, c := range clients {
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}

		var paid []*Receipt
		for i := range clients {
			var (
				need     *ApprovalNeededError
				unusable *ApprovalUnusableError
				inFlight *InFlightError
			)
			switch err := errs[i]; {
			case err == nil && res[i].Payment != nil && res[i].Payment.Settled:
				paid = append(paid, res[i].Payment)
			// The loser finds the approval used, loses it in the
			// reservation, or finds the winner's payment for the same
			// request still in flight: none signs.
			case errors.As(err, &need), errors.As(err, &unusable), errors.As(err, &inFlight):
			default:
				t.Fatalf("round %d, client %d: %+v, %T %v", round, i, res[i], err, err)
			}
		}
		if len(paid) != 1 {
			t.Fatalf("round %d: %d payments for one approval", round, len(paid))
		}
		if a, err := human.ApprovalByID(ctx, ap.ID); err != nil || a.State != ledger.ApprovalUsed || a.RecordID != paid[0].LedgerID {
			t.Errorf("round %d: approval %+v, %v; want used by payment %d", round, a, err, paid[0].LedgerID)
		}
	}
	if got := n.signer.calls.Load(); got != rounds {
		t.Errorf("%d signatures for %d approvals", got, rounds)
	}
	n.moved(t, payer0, payee0, rounds*jokePrice)
	if got := recordCount(t, leds[1]); got != rounds {
		t.Errorf("the ledger holds %d payments, want %d", got, rounds)
	}
}

// TestOutOfBandOff: with out-of-band approval off nothing can be recorded,
// and an approval another client recorded in the same ledger pays nothing
// here.
func TestOutOfBandOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newApprovalRig(t, nil, Approvals{})
	payer0, payee0 := rig.balances(t)
	_, err := rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	if _, err := rig.c.RequestApproval(ctx, need, "approval_test"); !errors.Is(err, ErrOutOfBandOff) {
		t.Errorf("RequestApproval: %v; want ErrOutOfBandOff", err)
	}
	if all, err := rig.led.Approvals(ctx, true, 0); err != nil || len(all) != 0 {
		t.Errorf("approvals recorded: %+v, %v", all, err)
	}

	on := rig.clientFor(t, Config{Policy: askAbove(), Ledger: rig.led, Approvals: outOfBand, Now: rig.clientNow.Now})
	ap, err := on.RequestApproval(ctx, need, "approval_test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rig.led.Decide(ctx, ap.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = rig.c.Fetch(ctx, rig.joke)
	needsApproval(t, err)
	rig.nothingSigned(t, payer0, payee0)

	// The approval was good: the client that may use it pays with it.
	if res, err := on.Fetch(ctx, rig.joke); err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Fatalf("Fetch with out-of-band approval on: %+v, %v", res, err)
	}
	rig.moved(t, payer0, payee0, jokePrice)
}

// TestElicitedApproval: a human's answer bound to the payment pays it
// without the ledger's approvals; an answer for other terms pays nothing
// and says the terms changed.
func TestElicitedApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var price atomic.Int64
	rig := newApprovalRig(t, pricedJoke(&price), outOfBand)
	payer0, payee0 := rig.balances(t)

	_, err := rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	r := rig.joke
	r.HumanApproved = &need.Binding
	res, err := rig.c.Fetch(ctx, r)
	if err != nil || res.Payment == nil || !res.Payment.Settled || res.Payment.Amount.String() != strconv.Itoa(jokePrice) {
		t.Fatalf("Fetch with the elicited approval: %+v, %v", res, err)
	}
	rig.moved(t, payer0, payee0, jokePrice)
	if all, err := rig.led.Approvals(ctx, true, 0); err != nil || len(all) != 0 {
		t.Errorf("an elicited approval went through the ledger's approvals: %+v, %v", all, err)
	}

	price.Store(30000)
	_, err = rig.c.Fetch(ctx, r)
	changed := needsApproval(t, err)
	if !changed.Changed || changed.Binding == need.Binding || changed.Ask.AmountAtomic != "30000" {
		t.Errorf("with an answer for other terms: changed %v, binding %x (old %x), amount %s", changed.Changed, changed.Binding, need.Binding, changed.Ask.AmountAtomic)
	}
	if got := rig.signer.calls.Load(); got != 1 {
		t.Errorf("%d signatures, want the 1 approved", got)
	}
	rig.moved(t, payer0, payee0, jokePrice)
}

// TestApprovalCoversThePaymentFlow: a human who approved a payment that is
// settled after the work approved nothing for the same amount settled
// before it (a request that fails is then paid all the same).
func TestApprovalCoversThePaymentFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var flow atomic.Value
	flow.Store("")
	routes := rewrite("/v1/joke", func(o map[string]any) {
		if f := flow.Load().(string); f != "" {
			extra(o)["paymentFlow"] = f
		}
	})
	n := startNet(t, localnet.NetworkConfig{Routes: routes}, funding)
	p := askAbove()
	p.PaymentFlows = append(p.PaymentFlows, x402.FlowUpfront)
	led := openLedgerAt(t, filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{})
	c := n.clientFor(t, Config{Policy: p, Ledger: led, Approvals: outOfBand})
	joke := Request{URL: n.APIURL + "/v1/joke"}

	_, err := c.Fetch(ctx, joke)
	need := needsApproval(t, err)
	flow.Store(x402.FlowUpfront)
	r := joke
	r.HumanApproved = &need.Binding
	_, err = c.Fetch(ctx, r)
	changed := needsApproval(t, err)
	if !changed.Changed || changed.Binding == need.Binding {
		t.Errorf("an approval of the default flow covered an upfront one: changed %v", changed.Changed)
	}
	if got := n.signer.calls.Load(); got != 0 {
		t.Errorf("%d signatures, want none", got)
	}
	// An explicit "authorization" is the default flow: the same binding.
	flow.Store(x402.FlowAuthorization)
	if res, err := c.Fetch(ctx, r); err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Errorf("the approved terms, with the default flow named: %+v, %v", res, err)
	}
}

// TestApprovalShowsACleanURL: a URL whose query hides a right-to-left
// override and a zero-width space (to make a human read another host) is
// shown cleaned in the question and in the ledger's pending approval, and
// the approval still pays exactly that request once approved.
func TestApprovalShowsACleanURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rig := newApprovalRig(t, nil, outOfBand)
	rig.joke.URL += "?for=\u202emoc.elpmaxe-detsurt\u200b"
	_, err := rig.c.Fetch(ctx, rig.joke)
	need := needsApproval(t, err)
	ap, err := rig.c.RequestApproval(ctx, need, "approval_test")
	if err != nil {
		t.Fatalf("RequestApproval of a URL with hidden characters: %v", err)
	}
	for _, shown := range []string{need.Ask.URL, ap.URL} {
		if strings.ContainsAny(shown, "\u202e\u200b") || !strings.Contains(shown, "moc.elpmaxe-detsurt") {
			t.Errorf("shown URL %q", shown)
		}
	}
	if _, err := rig.led.Decide(ctx, ap.ID, true); err != nil {
		t.Fatal(err)
	}
	payer0, payee0 := rig.balances(t)
	if res, err := rig.c.Fetch(ctx, rig.joke); err != nil || res.Payment == nil || !res.Payment.Settled {
		t.Fatalf("the approved request: %+v, %v", res, err)
	}
	rig.moved(t, payer0, payee0, jokePrice)
}
