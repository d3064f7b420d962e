package localnet

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// facilitatorGas is the native coin given to the facilitator's account. A
// settlement costs well under 0.001 ETH at the local chain's base fee,
// so this pays for millions of them.
var facilitatorGas = new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))

// NetworkConfig configures Start. The zero value is usable.
type NetworkConfig struct {
	// MaxClockDrift bounds how far the chain's block time may run ahead of
	// wall-clock time (see ChainConfig). Zero means DefaultMaxClockDrift.
	MaxClockDrift time.Duration
	// Routes of the paid API; nil means DefaultRoutes().
	Routes []Route
	// RPC also serves the chain over HTTP JSON-RPC (Network.RPCURL), so
	// code written against a node, go-ethereum's ethclient or a wallet, can
	// read and use it.
	RPC bool
	// Addrs are the servers' listen addresses; see ListenAddrs.
	Addrs ListenAddrs
	// Deployer, when set, deploys the token (see ChainConfig.Deployer).
	Deployer *ecdsa.PrivateKey
}

// DefaultListenAddr is the listen address of a server whose address is not
// configured: a free loopback port chosen by the system.
const DefaultListenAddr = "127.0.0.1:0"

// ErrNotLoopback is wrapped by the errors Start and CheckLoopback return
// for a listen address that is not a loopback IP.
var ErrNotLoopback = errors.New("not a loopback address")

// ListenAddrs are "ip:port" listen addresses for a network's servers; an
// empty one means DefaultListenAddr. Fixed ports let a configuration
// written for one run (see Devnet) name the servers. RPC is used only when
// NetworkConfig.RPC is set.
type ListenAddrs struct {
	RPC, Facilitator, API string
}

// CheckLoopback accepts only an "ip:port" address whose IP is a loopback
// one. A network's servers take no credentials and its facilitator pays gas
// for anyone who asks, so they must not be reachable from other machines;
// a host name is refused because it could resolve to anything.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not an ip:port address: %w", addr, err)
	}
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
		return fmt.Errorf("%s is %w (no host means every interface)", addr, ErrNotLoopback)
	case err != nil:
		return fmt.Errorf("%s is %w (give an IP such as 127.0.0.1, not a host name)", addr, ErrNotLoopback)
	case !ip.IsLoopback():
		return fmt.Errorf("%s is %w", addr, ErrNotLoopback)
	}
	return nil
}

// Network is a complete local x402 network: a chain with the token, a
// facilitator and a paid API, each server on its own loopback port.
type Network struct {
	Chain          *Chain
	Facilitator    *Facilitator
	API            *PaidAPI
	FacilitatorURL string // e.g. http://127.0.0.1:40001
	APIURL         string // e.g. http://127.0.0.1:40002
	// RPCURL is the chain's JSON-RPC endpoint, e.g. http://127.0.0.1:40003;
	// empty unless NetworkConfig.RPC is set.
	RPCURL string
	PayTo  common.Address

	chainRPC  *chainRPC
	servers   []*server
	serveErrs chan error
	closeOnce sync.Once
	closeErr  error
}

// Start brings up a network: chain and token, a facilitator account funded
// with native coin for gas, a fresh payee address, then the facilitator and
// the paid API (and the JSON-RPC server if cfg.RPC), each on its own
// loopback address (cfg.Addrs). ctx bounds startup only; the network runs
// until Close.
func Start(ctx context.Context, cfg NetworkConfig) (_ *Network, err error) {
	routes := cfg.Routes
	if routes == nil {
		routes = DefaultRoutes()
	}
	if err := validateRoutes(routes); err != nil {
		return nil, err
	}
	// Ports are taken before the chain is built, so a port in use fails at
	// once instead of after the token is deployed.
	lns, err := cfg.Addrs.listen(cfg.RPC)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lns.close()
		}
	}()

	chain, err := NewChain(ctx, ChainConfig{MaxClockDrift: cfg.MaxClockDrift, Deployer: cfg.Deployer})
	if err != nil {
		return nil, err
	}
	n := &Network{Chain: chain, serveErrs: make(chan error, 3)}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()

	if cfg.RPC {
		if n.chainRPC, err = newChainRPC(chain); err != nil {
			return nil, err
		}
		n.RPCURL = n.serve(n.chainRPC, lns.rpc)
	}

	facKey, _, err := chain.NewAccount(ctx, facilitatorGas, nil)
	if err != nil {
		return nil, fmt.Errorf("localnet: facilitator account: %w", err)
	}
	// The payee only receives, so it needs neither coin nor a kept key.
	payeeKey, err := crypto.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("localnet: payee key: %w", err)
	}
	n.PayTo = crypto.PubkeyToAddress(payeeKey.PublicKey)

	n.Facilitator = NewFacilitator(chain, facKey)
	n.FacilitatorURL = n.serve(n.Facilitator, lns.facilitator)
	n.API = NewPaidAPI(chain, n.FacilitatorURL, n.PayTo, routes)
	n.APIURL = n.serve(n.API, lns.api)
	items, err := n.API.DiscoveryItems(n.APIURL)
	if err != nil {
		return nil, err
	}
	n.Facilitator.Register(items...)
	return n, nil
}

// server is an http.Server that remembers its connections that have not
// carried a request yet. A client's transport often dials a spare
// connection it then never uses; http.Server.Shutdown waits five seconds
// before treating such a connection as idle, which would make every Close
// slow. Nothing is in progress on them, so Close may simply drop them.
type server struct {
	http.Server
	mu    sync.Mutex
	fresh map[net.Conn]bool
}

func (s *server) connState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == http.StateNew {
		s.fresh[c] = true
	} else {
		delete(s.fresh, c)
	}
}

// shutdown stops accepting, lets requests in progress finish (a settlement
// may be waiting for its block) and closes every connection.
func (s *server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	// Shutdown has closed the listener once it polls; from then on no
	// connection can join fresh, so dropping them repeatedly until Shutdown
	// returns catches every one.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return errors.Join(err, s.Close())
			}
			return nil
		case <-tick.C:
			s.mu.Lock()
			for c := range s.fresh {
				_ = c.Close()
			}
			s.mu.Unlock()
		}
	}
}

// listeners holds the network's listening sockets between Start taking
// the ports and handing them to their servers.
type listeners struct {
	rpc, facilitator, api net.Listener
}

// listen checks every address (see CheckLoopback) before taking any port,
// then listens on each; withRPC says whether the RPC address is used.
func (a ListenAddrs) listen(withRPC bool) (listeners, error) {
	var lns listeners
	type slot struct {
		name string
		addr *string
		ln   *net.Listener
	}
	slots := []slot{{"facilitator", &a.Facilitator, &lns.facilitator}, {"paid API", &a.API, &lns.api}}
	if withRPC {
		slots = append(slots, slot{"JSON-RPC", &a.RPC, &lns.rpc})
	}
	for _, s := range slots {
		if *s.addr == "" {
			*s.addr = DefaultListenAddr
		}
		if err := CheckLoopback(*s.addr); err != nil {
			return lns, fmt.Errorf("localnet: %s address %w", s.name, err)
		}
	}
	for _, s := range slots {
		ln, err := net.Listen("tcp", *s.addr)
		if err != nil {
			lns.close()
			return listeners{}, fmt.Errorf("localnet: %s: %w", s.name, err)
		}
		*s.ln = ln
	}
	return lns, nil
}

// close closes the listeners not yet served. Closing one a server already
// owns is harmless: Close on a closed listener only returns an error.
func (l listeners) close() {
	for _, ln := range []net.Listener{l.rpc, l.facilitator, l.api} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// serve starts h on ln and returns its base URL.
func (n *Network) serve(h http.Handler, ln net.Listener) string {
	srv := &server{fresh: make(map[net.Conn]bool)}
	srv.Server = http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		// Room for a 16 KiB payment header and the usual ones, but not for
		// the 1 MiB net/http allows by default.
		MaxHeaderBytes: 64 << 10,
		ConnState:      srv.connState,
	}
	n.servers = append(n.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErrs <- err
		}
	}()
	return "http://" + ln.Addr().String()
}

// Close stops the paid API, then the facilitator, then the JSON-RPC server,
// then the chain. It is idempotent and safe to call on a partly started
// network.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		// A fault's stall must not hold the shutdown up.
		if n.Facilitator != nil {
			n.Facilitator.stopStalls()
		}
		// The API first: its in-flight requests may still be settling
		// through the facilitator, which needs the chain.
		for i := len(n.servers) - 1; i >= 0; i-- {
			errs = append(errs, n.servers[i].shutdown())
		}
		if n.chainRPC != nil {
			n.chainRPC.stop()
		}
		if n.API != nil {
			n.API.closeIdle()
		}
		if n.Chain != nil {
			errs = append(errs, n.Chain.Close())
		}
	drain:
		for {
			select {
			case err := <-n.serveErrs:
				errs = append(errs, err)
			default:
				break drain
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// NewPayer creates an account holding tokens (atomic units) and no native
// coin: an EIP-3009 payer only signs, the facilitator pays the gas.
func (n *Network) NewPayer(ctx context.Context, tokens *big.Int) (*ecdsa.PrivateKey, common.Address, error) {
	return n.Chain.NewAccount(ctx, nil, tokens)
}

// --- default routes -----------------------------------------------------

// DefaultRoutes is the demo catalogue: five paid routes over both protocol
// versions at prices from 0.005 to 0.50 USDC (6 decimals), and a free one.
// Every handler answers deterministically from its input.
func DefaultRoutes() []Route {
	return []Route{
		{
			Method: http.MethodGet, Path: "/v2/weather", Version: 2, Price: big.NewInt(10_000),
			Description: "Current weather for a city", MimeType: "application/json",
			Handler: weatherHandler,
			Bazaar: rawJSON(`{"input":{"type":"http","method":"GET","queryParams":{"city":"Paris"}},` +
				`"output":{"type":"json","example":{"city":"Paris","temperatureC":18,"conditions":"cloudy","humidityPercent":61}}}`),
			BazaarSchema: rawJSON(`{"type":"object","properties":{"input":{"type":"object","properties":{` +
				`"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["GET"]},` +
				`"queryParams":{"type":"object","properties":{"city":{"type":"string","description":"City name"}},"required":["city"]}},` +
				`"required":["type","method"]}},"required":["input"]}`),
		},
		{
			Method: http.MethodGet, Path: "/v1/joke", Version: 1, Price: big.NewInt(20_000),
			Description: "A programming joke", MimeType: "application/json",
			Handler: jokeHandler,
			Bazaar: rawJSON(`{"input":{"type":"http","method":"GET"},` +
				`"output":{"type":"json","example":{"setup":"…","punchline":"…"}}}`),
		},
		{
			Method: http.MethodPost, Path: "/v2/summarize", Version: 2, Price: big.NewInt(30_000),
			Description: "Summarize a text: its first sentence and its word count", MimeType: "application/json",
			Handler: summarizeHandler,
			Bazaar: rawJSON(`{"input":{"type":"http","method":"POST","bodyType":"json","body":{"text":"x402 lets agents pay for APIs. It uses HTTP 402."}},` +
				`"output":{"type":"json","example":{"summary":"x402 lets agents pay for APIs.","words":10,"sentences":2}}}`),
			BazaarSchema: rawJSON(`{"type":"object","properties":{"input":{"type":"object","properties":{` +
				`"type":{"type":"string","const":"http"},"method":{"type":"string","enum":["POST"]},"bodyType":{"type":"string","enum":["json"]},` +
				`"body":{"type":"object","properties":{"text":{"type":"string","description":"The text to summarize"}},"required":["text"]}},` +
				`"required":["type","method","bodyType","body"]}},"required":["input"]}`),
		},
		{
			Method: http.MethodGet, Path: "/v1/fx", Version: 1, Price: big.NewInt(5_000),
			Description: "Foreign exchange rate between two currencies", MimeType: "application/json",
			Handler: fxHandler,
			Bazaar: rawJSON(`{"input":{"type":"http","method":"GET","queryParams":{"base":"USD","quote":"EUR"}},` +
				`"output":{"type":"json","example":{"base":"USD","quote":"EUR","rate":"0.920000","asOf":"2025-01-02"}}}`),
			OutputSchema: rawJSON(`{"input":{"type":"http","method":"GET","discoverable":true,"queryParams":{` +
				`"base":{"type":"string","required":true,"description":"Currency to convert from: USD, EUR, GBP, JPY, CHF or CAD"},` +
				`"quote":{"type":"string","required":true,"description":"Currency to convert to"}}},"output":{"type":"json"}}`),
		},
		{
			Method: http.MethodGet, Path: "/v2/report", Version: 2, Price: big.NewInt(500_000),
			Description: "Full market report (premium)", MimeType: "application/json",
			Handler: reportHandler,
			Bazaar: rawJSON(`{"input":{"type":"http","method":"GET"},` +
				`"output":{"type":"json","example":{"title":"x402 market report","period":"2025-Q1","sections":[{"heading":"…","body":"…"}]}}}`),
		},
		{
			Method: http.MethodGet, Path: "/free/status", Description: "Service status (free)", MimeType: "application/json",
			Handler: statusHandler,
		},
	}
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

var weatherConditions = []string{"sunny", "cloudy", "rainy", "windy", "foggy", "snowy"}

// weatherHandler derives the weather from a hash of the city name, so the
// same city always gets the same answer.
func weatherHandler(w http.ResponseWriter, r *http.Request) {
	city := strings.TrimSpace(r.URL.Query().Get("city"))
	if city == "" || len(city) > 100 {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "query parameter city is required (at most 100 bytes)"})
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(city)))
	sum := h.Sum32()
	writeJSON(w, http.StatusOK, struct {
		City            string `json:"city"`
		TemperatureC    int    `json:"temperatureC"`
		Conditions      string `json:"conditions"`
		HumidityPercent int    `json:"humidityPercent"`
	}{
		City:            city,
		TemperatureC:    int(sum%40) - 5,
		Conditions:      weatherConditions[(sum/40)%uint32(len(weatherConditions))],
		HumidityPercent: 30 + int((sum/240)%60),
	})
}

func jokeHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Setup     string `json:"setup"`
		Punchline string `json:"punchline"`
	}{
		Setup:     "Why did the API return 402?",
		Punchline: "It had been asked for free lunch one time too many.",
	})
}

// summarizeHandler returns the first sentence of {"text": ...} and counts
// words and sentences.
func summarizeHandler(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Text string `json:"text"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err == nil {
		err = decodeStrict(body, &in)
	}
	if err != nil || strings.TrimSpace(in.Text) == "" {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: `body must be a JSON object {"text": "..."} with non-empty text`})
		return
	}
	text := strings.Join(strings.Fields(in.Text), " ")
	summary, sentences := text, 0
	for i := 0; i < len(text); i++ {
		if c := text[i]; (c == '.' || c == '!' || c == '?') && (i+1 == len(text) || text[i+1] == ' ') {
			if sentences == 0 {
				summary = text[:i+1]
			}
			sentences++
		}
	}
	if sentences == 0 {
		sentences = 1 // text without a final stop is still one sentence
	}
	writeJSON(w, http.StatusOK, struct {
		Summary   string `json:"summary"`
		Words     int    `json:"words"`
		Sentences int    `json:"sentences"`
	}{summary, len(strings.Fields(text)), sentences})
}

// fxPerUSD is a fixed table of units per US dollar; rates between two other
// currencies are crossed through the dollar with exact rationals.
var fxPerUSD = map[string]*big.Rat{
	"USD": big.NewRat(1, 1),
	"EUR": big.NewRat(92, 100),
	"GBP": big.NewRat(79, 100),
	"JPY": big.NewRat(15_650, 100),
	"CHF": big.NewRat(90, 100),
	"CAD": big.NewRat(136, 100),
}

func fxHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	base, quote := strings.ToUpper(q.Get("base")), strings.ToUpper(q.Get("quote"))
	b, okB := fxPerUSD[base]
	qt, okQ := fxPerUSD[quote]
	if !okB || !okQ {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "base and quote must be one of USD, EUR, GBP, JPY, CHF, CAD"})
		return
	}
	rate := new(big.Rat).Quo(qt, b)
	writeJSON(w, http.StatusOK, struct {
		Base  string `json:"base"`
		Quote string `json:"quote"`
		Rate  string `json:"rate"`
		AsOf  string `json:"asOf"`
	}{base, quote, rate.FloatString(6), "2025-01-02"})
}

func reportHandler(w http.ResponseWriter, _ *http.Request) {
	type section struct {
		Heading string `json:"heading"`
		Body    string `json:"body"`
	}
	writeJSON(w, http.StatusOK, struct {
		Title    string    `json:"title"`
		Period   string    `json:"period"`
		Sections []section `json:"sections"`
	}{
		Title:  "x402 market report",
		Period: "2025-Q1",
		Sections: []section{
			{"Volume", "Paid API calls settled through x402 grew steadily; most paid under 0.05 USDC per call."},
			{"Networks", "Base carried most settlements; testnets remained popular for development."},
			{"Outlook", "Agents paying per call make small, frequent payments the norm."},
		},
	})
}

func statusHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}
