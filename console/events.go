package console

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"
)

// events is the page's live feed (server-sent events): one "change" event
// whenever what the page shows changed in the ledger, which any process
// may write. The page's script then fetches the page again and swaps it
// in; without the script, the page is read by reloading it.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ string, _ *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	// Event streams outlive the server's write deadline only if none is
	// set; Serve sets none.
	last, err := s.fingerprint(r.Context())
	if err != nil {
		http.Error(w, "cannot read the ledger", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: live\n\n")
	fl.Flush()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
		}
		if _, sess := s.auth.session(r); sess == nil {
			fmt.Fprint(w, "event: logout\ndata: -\n\n")
			fl.Flush()
			return
		}
		f, err := s.fingerprint(r.Context())
		if err != nil {
			continue
		}
		idle++
		switch {
		case f != last:
			last, idle = f, 0
			fmt.Fprintf(w, "event: change\ndata: %x\n\n", f[:8])
		case idle%60 == 0:
			// Time alone frees rolling budgets and ages approvals: the
			// page is fetched again each minute. It also keeps proxies
			// from closing a silent stream.
			fmt.Fprint(w, "event: change\ndata: tick\n\n")
		default:
			continue
		}
		fl.Flush()
	}
}

// fingerprint is a digest of what the page shows, but for relative
// times: it changes when the page would.
func (s *Server) fingerprint(ctx context.Context) ([32]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hsh := sha256.New()
	recs, err := s.opts.Ledger.Recent(ctx, recentRows)
	if err != nil {
		return [32]byte{}, err
	}
	for _, r := range recs {
		fmt.Fprintf(hsh, "r%d|%s|%s|%d\n", r.ID, r.State, r.Transaction, r.Updated.UnixNano())
	}
	as, err := s.opts.Ledger.Approvals(ctx, false, pendingRows)
	if err != nil {
		return [32]byte{}, err
	}
	for _, a := range as {
		fmt.Fprintf(hsh, "a%s|%s\n", a.ID, a.Status(s.now()))
	}
	var f [32]byte
	copy(f[:], hsh.Sum(nil))
	return f, nil
}
