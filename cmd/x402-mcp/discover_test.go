package main

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/localnet"
)

// TestDiscoverLargeListing drives x402_discover with the official client
// against the local facilitator listing 2,500 more routes: the listing is
// read to its end (the cheapest route is listed last, past the thousand
// that used to be the ceiling), a text query goes to the facilitator's
// search, and a search that stopped at its bound says so in a field the
// output schema declares.
func TestDiscoverLargeListing(t *testing.T) {
	tsClientDir(t)
	const bulk = 2500
	weather := localnet.DefaultRoutes()[0]
	extra := make([]localnet.Route, 0, bulk)
	for i := range bulk {
		rt := weather
		rt.Path = fmt.Sprintf("/bulk/%d", i)
		rt.Description = fmt.Sprintf("Bulk endpoint number %d", i)
		rt.Price = big.NewInt(50_000)
		if i == bulk-1 {
			rt.Price = big.NewInt(1_000)
		}
		extra = append(extra, rt)
	}
	n, cfg, _ := tsDevnet(t, "max_per_payment = \"0.10\"\n", extra...)
	last := n.APIURL + fmt.Sprintf("/bulk/%d", bulk-1)

	calls := []tsCall{
		{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"limit": 1}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			if gjson.Get(s, "results.0.url").String() != last || gjson.Get(s, "incomplete").Exists() || gjson.Get(s, "problems").Exists() {
				t.Errorf("discover, cheapest first: %s", s)
			}
		}},
		{step: tsStep{Op: "call", Name: "x402_discover", Arguments: map[string]any{"query": "number", "limit": 5}}, check: func(t *testing.T, r tsResult) {
			s := r.Structured()
			inc := gjson.Get(s, "incomplete").Array()
			if len(gjson.Get(s, "results").Array()) != 5 || len(inc) != 1 || !strings.Contains(inc[0].String(), "search: read the first 1000 results") {
				t.Errorf("discover by search: %s", s)
			}
		}},
	}
	steps := []tsStep{{Op: "listTools"}}
	for _, c := range calls {
		steps = append(steps, c.step)
	}
	run := tsClient(t, tsPlan{Args: []string{"serve", "--config", cfg}, Steps: steps})
	mustListTools(t, run)
	checkCalls(t, calls, run.Steps[1:])
	if got := slices.Compact(n.Facilitator.Searches()); !slices.Equal(got, []string{"number"}) {
		t.Errorf("the facilitator saw searches %q", got)
	}
}
