package localnet

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const (
	discoveryDefaultLimit = 20
	discoveryMaxLimit     = 100
)

// DiscoveryItem is one resource in the facilitator's bazaar listing.
type DiscoveryItem struct {
	// Resource is the absolute URL of the paid resource.
	Resource string
	// Type is the resource kind; "http" when empty.
	Type string
	// X402Version is the protocol version the resource speaks (1 or 2).
	X402Version int
	// Accepts are the payment options exactly as the resource offers them.
	Accepts []json.RawMessage
	// LastUpdated is when the listing was last refreshed; the time of
	// Register when zero.
	LastUpdated time.Time
	// Metadata describes how to call the resource (bazaar input/output).
	Metadata json.RawMessage
}

// Register adds resources to the discovery listing. An item whose Resource is
// already listed replaces the old entry in place, the way a re-crawled
// resource is refreshed rather than duplicated.
func (f *Facilitator) Register(items ...DiscoveryItem) {
	now := time.Now().UTC()
	f.discoveryMu.Lock()
	defer f.discoveryMu.Unlock()
	for _, it := range items {
		if it.Type == "" {
			it.Type = "http"
		}
		if it.LastUpdated.IsZero() {
			it.LastUpdated = now
		}
		it.Accepts = append([]json.RawMessage(nil), it.Accepts...)
		replaced := false
		for i := range f.discovery {
			if f.discovery[i].Resource == it.Resource {
				f.discovery[i], replaced = it, true
				break
			}
		}
		if !replaced {
			f.discovery = append(f.discovery, it)
		}
	}
}

type discoveryItemWire struct {
	Resource    string            `json:"resource"`
	Type        string            `json:"type"`
	X402Version int               `json:"x402Version"`
	Accepts     []json.RawMessage `json:"accepts"`
	LastUpdated string            `json:"lastUpdated"`
	Metadata    json.RawMessage   `json:"metadata"`
}

type discoveryResponse struct {
	X402Version int                 `json:"x402Version"`
	Items       []discoveryItemWire `json:"items"`
	Pagination  struct {
		Limit  int `json:"limit"`
		Offset int `json:"offset"`
		Total  int `json:"total"`
	} `json:"pagination"`
}

func (f *Facilitator) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(q.Get("limit"), discoveryDefaultLimit)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "limit: " + err.Error()})
		return
	}
	offset, err := queryInt(q.Get("offset"), 0)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "offset: " + err.Error()})
		return
	}
	if limit == 0 {
		limit = discoveryDefaultLimit
	}
	limit = min(limit, discoveryMaxLimit)
	typ := q.Get("type")

	f.discoveryMu.Lock()
	var matched []DiscoveryItem
	for _, it := range f.discovery {
		if typ == "" || it.Type == typ {
			matched = append(matched, it)
		}
	}
	f.discoveryMu.Unlock()

	resp := discoveryResponse{X402Version: 2, Items: []discoveryItemWire{}}
	resp.Pagination.Limit, resp.Pagination.Offset, resp.Pagination.Total = limit, offset, len(matched)
	if offset < len(matched) {
		for _, it := range matched[offset:min(len(matched), offset+limit)] {
			meta := it.Metadata
			if len(meta) == 0 {
				meta = json.RawMessage(`{}`)
			}
			resp.Items = append(resp.Items, discoveryItemWire{
				Resource:    it.Resource,
				Type:        it.Type,
				X402Version: it.X402Version,
				Accepts:     it.Accepts,
				LastUpdated: it.LastUpdated.UTC().Format(time.RFC3339),
				Metadata:    meta,
			})
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// queryInt parses a non-negative decimal query parameter; empty means def.
func queryInt(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return n, nil
}
