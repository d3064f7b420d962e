package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// FuzzParseItem feeds arbitrary bytes to the listing item parser: it must
// never panic, and what it keeps must be within every bound the package
// documents.
func FuzzParseItem(f *testing.F) {
	for _, s := range []string{itemV1Joke, itemV1FX, itemV2Weather, itemV2Search, itemLong, itemMCP} {
		f.Add([]byte(s))
	}
	for _, s := range badItems {
		if len(s) < 4096 {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`{"url":"http://a.example","accepts":[{"scheme":"exact","network":"eip155:1","amount":1}],"lastUpdated":1e300}`))
	f.Add([]byte(`{"resource":"https://a.example","discoveryInfo":{"input":{"method":"put"}},"tags":"single"}`))
	f.Add([]byte(`{"resource":" https://a.example","metadata":{"bazaar":{"info":{"output":{"example":[1,2]}}}}}`))

	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseItem(data, now)
		if err != nil {
			var ie *itemError
			if !errors.Is(err, errNotHTTP) && !errors.As(err, &ie) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		checkEntryBounds(t, e, now)
		for _, o := range e.Offers {
			if o.Amount == nil || o.Amount.Sign() <= 0 || o.Amount.Cmp(maxUint256) > 0 {
				t.Fatalf("amount %v out of range", o.Amount)
			}
			if !json.Valid(o.Raw) || !bytes.Contains(data, o.Raw) {
				t.Fatalf("offer Raw %q is not part of the item", o.Raw)
			}
			if o.Network != "" && !strings.HasPrefix(o.Network, "eip155:") {
				t.Fatalf("network %q", o.Network)
			}
			for _, s := range []string{o.Scheme, o.Asset, o.PayTo} {
				checkClean(t, s, maxAddressRunes)
			}
		}
	})
}

// checkEntryBounds asserts what every entry handed out satisfies.
func checkEntryBounds(t *testing.T, e Entry, now time.Time) {
	t.Helper()
	if _, err := checkURL(e.URL); err != nil {
		t.Fatalf("kept URL %q: %v", e.URL, err)
	}
	if u, _ := url.Parse(e.URL); u.Scheme != "http" && u.Scheme != "https" { // url.Parse lower-cases it
		t.Fatalf("scheme %q", u.Scheme)
	}
	if m, err := checkMethod(e.Method); err != nil || m != e.Method {
		t.Fatalf("method %q", e.Method)
	}
	checkClean(t, e.Description, maxDescriptionRunes)
	if len(e.Tags) > maxTags {
		t.Fatalf("%d tags", len(e.Tags))
	}
	for _, tag := range e.Tags {
		if tag == "" {
			t.Fatal("empty tag")
		}
		checkClean(t, tag, maxTagRunes)
	}
	if len(e.Offers) > maxOffers {
		t.Fatalf("%d offers", len(e.Offers))
	}
	if e.Input != nil && (len(e.Input) > maxInputBytes || !gjson.Valid(string(e.Input)) || !gjson.ParseBytes(e.Input).IsObject()) {
		t.Fatalf("input %q", e.Input)
	}
	if e.Output != nil && (len(e.Output) > maxOutputBytes || !gjson.Valid(string(e.Output)) || !gjson.ParseBytes(e.Output).IsObject()) {
		t.Fatalf("output %q", e.Output)
	}
	if e.LastUpdated.After(now.Add(futureSlack)) {
		t.Fatalf("lastUpdated %v is in the future", e.LastUpdated)
	}
	if e.X402Version < 0 || e.X402Version > 2 {
		t.Fatalf("version %d", e.X402Version)
	}
}

func checkClean(t *testing.T, s string, maxRunes int) {
	t.Helper()
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxRunes {
		t.Fatalf("text %q is not valid or longer than %d runes", s, maxRunes)
	}
	for _, r := range s {
		if (unicode.IsSpace(r) && r != ' ') || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("text %q holds %U", s, r)
		}
	}
	if strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
		t.Fatalf("text %q has untrimmed space", s)
	}
}

// FuzzDecodePage feeds arbitrary bytes to the page decoder: it must never
// panic, keep only items within the item bound, and count consistently.
func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"x402Version":2,"items":[` + itemV1Joke + `,` + itemV2Weather + `],"pagination":{"limit":2,"offset":0,"total":2}}`))
	f.Add([]byte(`{"resources":[` + itemV2Search + `],"partialResults":true,"pagination":{"cursor":"abc"}}`))
	f.Add([]byte(`{"items":null}`))
	f.Add([]byte(`{"items":[1,"x",{}],"items":[]}`))
	f.Add([]byte(`{"items":[{"a":1},`))
	f.Add([]byte(`<html>`))
	f.Add([]byte(`{"resources":[],"partialResults":true,"partialResults":false,"pagination":{"Total":"7","cursor":"x"},"pagination":{"total":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePage(&capReader{r: bytes.NewReader(data), left: maxPageBytes}, -1)
		if p == nil {
			t.Fatal("nil page")
		}
		if len(p.items)+p.dropped > p.count || len(p.items) > maxItemsPerPage {
			t.Fatalf("items %d + dropped %d > count %d", len(p.items), p.dropped, p.count)
		}
		for _, it := range p.items {
			if len(it.Raw) > maxItemBytes || !json.Valid([]byte(it.Raw)) {
				t.Fatalf("kept item %q", it)
			}
		}
		if err == nil && !json.Valid(data) {
			t.Fatalf("no error for invalid JSON %q", data)
		}
		// A valid page is read by the gjson pass; the streaming decoder,
		// which reads broken ones, must read it the same way.
		if json.Valid(data) {
			sp, serr := decodePageStream(bytes.NewReader(data))
			if (err == nil) != (serr == nil) || sp.count != p.count || sp.dropped != p.dropped || len(sp.items) != len(p.items) ||
				sp.total != p.total || sp.cursor != p.cursor || sp.partial != p.partial {
				t.Fatalf("the two readers differ on %q:\n%+v %v\n%+v %v", data, *p, err, *sp.page, serr)
			}
			for i := range p.items {
				if p.items[i].Raw != sp.items[i].Raw {
					t.Fatalf("item %d: %q and %q", i, p.items[i].Raw, sp.items[i].Raw)
				}
			}
		}
	})
}
