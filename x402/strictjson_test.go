package x402

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		in    string
		kind  ErrorKind // 0: accepted
		field string
	}{
		{`{}`, 0, ""},
		{` {"a":[1,{"b":null}],"c":"\u00e9"} `, 0, ""},
		{`{"a":{"x":1},"b":{"x":1}}`, 0, ""}, // the same key in sibling objects is fine
		{`{"a":[{"x":1},{"x":1}]}`, 0, ""},
		{`{"a":1,"a":1}`, ErrDuplicateKey, "a"},
		{`{"a":[{"x":1},{"x":1,"y":2,"x":3}]}`, ErrDuplicateKey, "a[1].x"},
		{`{"a":{"b":{"c":[[{"d":1,"D":2}]]}}}`, ErrDuplicateKey, "a.b.c[0][0].D"},
		{`{"\u0041":1,"A":2}`, ErrDuplicateKey, "A"},
		{`{"ſ":1,"S":2}`, ErrDuplicateKey, "S"}, // long s folds to s
		{`{"a":1}{"b":2}`, ErrInvalidJSON, ""},
		{`{"a":1}x`, ErrInvalidJSON, ""},
		{`{"a":01}`, ErrInvalidJSON, ""},
		{`{"a":NaN}`, ErrInvalidJSON, ""},
		{`{"a":1,}`, ErrInvalidJSON, ""},
		{`{'a':1}`, ErrInvalidJSON, ""},
		{"\ufeff{}", ErrInvalidJSON, ""},
		{`"just a string"`, ErrInvalidJSON, ""},
		{`null`, ErrInvalidJSON, ""},
		{``, ErrInvalidJSON, ""},
		{`{"a":"` + "\xc3\x28" + `"}`, ErrInvalidJSON, ""},
		{strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth), 0, ""},
		{strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat(`}`, MaxDepth+1), ErrTooLarge, ""},
		{`{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}`, ErrTooLarge, ""},
	}
	for _, tc := range tests {
		err := checkJSON([]byte(tc.in), "test")
		if tc.kind == 0 {
			if err != nil {
				t.Errorf("%.60q: %v", tc.in, err)
			}
			continue
		}
		var we *WireError
		if !errors.As(err, &we) || we.Kind != tc.kind {
			t.Errorf("%.60q: got %v, want %v", tc.in, err, tc.kind)
			continue
		}
		if tc.field != "" && we.Field != tc.field {
			t.Errorf("%.60q: field %q, want %q", tc.in, we.Field, tc.field)
		}
	}
}

func TestCheckJSONBoundsField(t *testing.T) {
	doc := `{"\n\u001b` + strings.Repeat("k", 500) + `":{"a":1,"a":2}}`
	err := checkJSON([]byte(doc), "test")
	var we *WireError
	if !errors.As(err, &we) || len(we.Field) > maxFieldBytes+len("…") || strings.ContainsAny(we.Field, "\n\x1b") {
		t.Errorf("field not bounded: %v, %q", err, we.Field)
	}
	if len(err.Error()) > 300 || strings.ContainsAny(err.Error(), "\n\x1b") {
		t.Errorf("message not bounded: %q", err)
	}
}

func TestFoldKeyMatchesEqualFold(t *testing.T) {
	words := []string{"amount", "AMOUNT", "Amount", "k", "K", "\u212a", "s", "S", "ſ", "ß", "ẞ", "σ", "ς", "Σ",
		"payTo", "payto", "é", "É", "i", "I", "İ", "ı", "", "ǅ", "ǆ", "Ǆ", "\u0345", "ι", "Ι"}
	for _, a := range words {
		for _, b := range words {
			if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("foldKey(%q)==foldKey(%q) is %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}
