package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Reading one page of a facilitator's listing or search: bounded, checked
// once as JSON and walked with gjson, or read item by item when it is not
// valid JSON so that the items before the problem are kept.

// errPageTooLarge is what capReader returns past maxPageBytes.
var errPageTooLarge = fmt.Errorf("the page exceeds %d bytes", maxPageBytes)

// capReader reads at most left bytes and fails with errPageTooLarge when
// there is more, so that "too large" is told apart from "cut short".
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errPageTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// page is one decoded listing or search response.
type page struct {
	items   []gjson.Result // items within the per-item and per-page bounds; valid JSON
	count   int            // elements seen in the items array, kept or not
	dropped int            // elements over a bound, not kept
	total   int            // pagination.total; -1 when absent
	cursor  string         // search pagination.cursor; "" when absent
	partial bool           // search partialResults: the facilitator cut its matches
	bytes   int            // bytes of the response read
}

// decodePage reads a listing ({items, pagination}) or search ({resources,
// partialResults, pagination}) response. The page returned is never nil;
// an error means it is incomplete: the JSON broke off, was not a listing, or
// passed maxPageBytes (the item being read then is counted in dropped), and
// the items before the problem are kept.
//
// A whole, valid page (every honest one) is read in one pass with gjson,
// without decoding anything the parser does not look at; only a broken or
// oversized page goes through encoding/json's streaming decoder, which
// finds exactly where it broke and keeps what came before.
func decodePage(r io.Reader, sizeHint int64) (*page, error) {
	body, err := readAll(r, sizeHint)
	if err == nil && gjson.ValidBytes(body) {
		pr := readPage(gjson.Parse(string(body)))
		pr.bytes = len(body)
		return pr.page, pr.err
	}
	if err == nil {
		err = io.EOF
	}
	p, perr := decodePageStream(io.MultiReader(bytes.NewReader(body), errReader{err}))
	p.bytes = len(body)
	return p.page, perr
}

// readAll is io.ReadAll starting from the size the server announced (up to
// the page bound), so a page is read into one buffer, not a dozen.
func readAll(r io.Reader, sizeHint int64) ([]byte, error) {
	var b bytes.Buffer
	if sizeHint > 0 {
		b.Grow(int(min(sizeHint, maxPageBytes)) + bytes.MinRead)
	}
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// errReader fails with err: the read error decodePage met, replayed after
// the bytes that came before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// pageResult is a page with the problem that ended it, from readPage.
type pageResult struct {
	*page
	err error
}

// readPage reads a valid JSON document as a page. Repeated keys are read
// in order, as the streaming decoder reads them: items of two "items"
// arrays are both kept, and the last good pagination wins.
func readPage(doc gjson.Result) pageResult {
	p := &page{total: -1}
	if !doc.IsObject() {
		return pageResult{p, errors.New("not a JSON listing: the response is not a JSON object")}
	}
	var err error
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "items", "resources":
			err = p.readItemArray(v)
		case "pagination":
			p.readPagination(v)
		case "partialResults":
			p.partial = v.Type == gjson.True
		}
		return err == nil
	})
	return pageResult{p, err}
}

// readItemArray reads the value of a listing's items key.
func (p *page) readItemArray(v gjson.Result) error {
	switch {
	case v.Type == gjson.Null:
		return nil // "items": null is an empty page
	case !v.IsArray():
		return errors.New("not a JSON listing: its items are not an array")
	}
	v.ForEach(func(_, it gjson.Result) bool {
		p.add(it)
		return true
	})
	return nil
}

// add keeps one element of the items array, within the bounds.
func (p *page) add(it gjson.Result) {
	p.count++
	if len(it.Raw) > maxItemBytes || len(p.items) >= maxItemsPerPage {
		p.dropped++
		return
	}
	p.items = append(p.items, it)
}

// readPagination reads total and cursor as encoding/json would decode
// them into {Total json.Number; Cursor *string}: keys matched without
// regard to case, the last of a repeated key winning, and a value of the
// wrong type spoiling the whole object. A malformed pagination is not
// fatal: the page's items are still good, and paging then stops on a
// short page.
func (p *page) readPagination(v gjson.Result) {
	if v.Type == gjson.Null || !v.IsObject() {
		return
	}
	total, cursor, ok := "", (*string)(nil), true
	v.ForEach(func(k, f gjson.Result) bool {
		switch {
		case strings.EqualFold(k.Str, "total"):
			switch f.Type {
			case gjson.Number:
				total = f.Raw
			case gjson.String:
				if ok = isJSONNumber(f.Str); ok {
					total = f.Str
				}
			case gjson.Null:
			default:
				ok = false
			}
		case strings.EqualFold(k.Str, "cursor"):
			switch f.Type {
			case gjson.String:
				s := f.Str
				cursor = &s
			case gjson.Null:
			default:
				ok = false
			}
		}
		return ok
	})
	if !ok {
		return
	}
	if n, err := strconv.Atoi(total); err == nil && n >= 0 {
		p.total = n
	}
	if cursor != nil && len(*cursor) <= 1024 {
		p.cursor = strings.Clone(*cursor)
	}
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	return s != "" && gjson.Valid(s) && gjson.Parse(s).Type == gjson.Number
}

// decodePageStream reads a page item by item with encoding/json, so that
// items before a problem are kept.
func decodePageStream(r io.Reader) (pageResult, error) {
	p := &page{total: -1}
	res := pageResult{page: p}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return res, pageErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return res, errors.New("not a JSON listing: the response is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return res, pageErr(err)
		}
		key, _ := tok.(string) // the decoder yields only strings as keys
		switch key {
		case "items", "resources":
			if err := p.readItems(dec); err != nil {
				return res, err
			}
		default:
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return res, pageErr(err)
			}
			switch key {
			case "pagination":
				p.readPagination(gjson.ParseBytes(raw))
			case "partialResults":
				p.partial = string(raw) == "true"
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return res, pageErr(err)
	}
	// Whatever follows the object was not meant for a JSON reader; the
	// items are whole, but the answer is not a listing.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return res, errors.New("not a JSON listing: data follows the JSON object")
	}
	return res, nil
}

// readItems reads the array of a listing's items key.
func (p *page) readItems(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return pageErr(err)
	}
	if tok == nil {
		return nil // "items": null is an empty page
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return errors.New("not a JSON listing: its items are not an array")
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, errPageTooLarge) {
				p.count++
				p.dropped++
			}
			return pageErr(err)
		}
		p.add(gjson.ParseBytes(raw))
	}
	_, err = dec.Token() // ']'
	return pageErr(err)
}

// pageErr words a decoding error for a Problem.
func pageErr(err error) error {
	var syn *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errPageTooLarge):
		return err
	case errors.As(err, &syn):
		return fmt.Errorf("not a JSON listing: invalid JSON at byte %d", syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the listing is cut short")
	}
	return fmt.Errorf("reading the listing: %w", err)
}
