package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleCatalogFile(t *testing.T) {
	path := filepath.Join("testdata", "example-catalog.toml")
	entries, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	w := entries[0]
	if w.URL != "https://api.example.com/weather" || w.Method != "GET" || w.Description != "Current weather for a city" ||
		strings.Join(w.Tags, ",") != "weather,forecast" || w.PriceHint != "0.01" || w.NetworkHint != "eip155:8453" ||
		len(w.Offers) != 0 || w.Sources[0] != "catalog "+path {
		t.Errorf("weather entry = %+v", w)
	}
	if got := string(w.Input); got != `{"type":"http","method":"GET","queryParams":{"city":"Paris"}}` {
		t.Errorf("weather input = %s", got)
	}
	s := entries[1]
	if got := string(s.Input); got != `{"type":"http","method":"POST","bodyType":"json","body":{"text":"x402 lets agents pay for APIs. It uses HTTP 402."}}` {
		t.Errorf("summarize input = %s", got)
	}
	if !json.Valid(s.Input) || s.NetworkHint != "eip155:8453" {
		t.Errorf("summarize entry = %+v", s)
	}
	if f := entries[2]; f.Method != "GET" || f.Description != "" || string(f.Input) != `{"type":"http","method":"GET"}` {
		t.Errorf("minimal entry = %+v (input %s)", f, f.Input)
	}
}

func TestCatalogFileErrors(t *testing.T) {
	const head = "# catalog\n[[endpoint]]\nurl = \"https://a.example/x\"\n\n[[endpoint]]\n"
	tests := []struct {
		name, body string
		line       int
		key, msg   string
	}{
		{"unknown key", head + "url = \"https://b.example/\"\ndescripton = \"typo\"\n", 7, "endpoint[1].descripton", "unknown key"},
		{"unknown top-level key", "title = \"x\"\n", 1, "title", "unknown key"},
		{"bad URL scheme", head + "url = \"ftp://b.example/file\"\n", 6, "endpoint[1].url", `URL scheme "ftp" is not http or https`},
		{"URL without host", head + "url = \"https:///path\"\n", 6, "endpoint[1].url", "has no host"},
		{"not a URL", head + "url = \"weather api\"\n", 6, "endpoint[1].url", "white space"},
		{"URL with credentials", head + "url = \"https://user:pw@b.example/\"\n", 6, "endpoint[1].url", "credentials"},
		{"missing URL", head + "description = \"no url\"\n", 5, "endpoint[1].url", "url is missing"},
		{"bad price", head + "url = \"https://b.example/\"\nprice = \"$0.01\"\n", 7, "endpoint[1].price", "not a decimal number"},
		{"negative price", head + "url = \"https://b.example/\"\nprice = \"-1\"\n", 7, "endpoint[1].price", "not a decimal number"},
		{"price as number", head + "url = \"https://b.example/\"\nprice = 0.01\n", 7, "endpoint[1].price", "expected a quoted string, found float"},
		{"bad network", head + "url = \"https://b.example/\"\nnetwork = \"solana\"\n", 7, "endpoint[1].network", "not an EVM network"},
		{"bad method", head + "url = \"https://b.example/\"\nmethod = \"FETCH\"\n", 7, "endpoint[1].method", "not one of"},
		{"body on GET", head + "url = \"https://b.example/\"\nbody = '{}'\n", 7, "endpoint[1].body", "sends no body"},
		{"body not JSON", head + "url = \"https://b.example/\"\nmethod = \"POST\"\nbody = '{text: 1}'\n", 8, "endpoint[1].body", "not valid JSON"},
		{"body type", head + "url = \"https://b.example/\"\nmethod = \"POST\"\nbody = 'x'\nbody_type = \"xml\"\n", 9, "endpoint[1].body_type", "not json, text or form-data"},
		{"query param number", head + "url = \"https://b.example/\"\nquery_params = { city = 3 }\n", 7, "endpoint[1].query_params.city", "expected a quoted string, found integer"},
		{"query params not a table", head + "url = \"https://b.example/\"\nquery_params = 3\n", 7, "endpoint[1].query_params", "expected a table of quoted strings, found integer"},
		{"key twice", head + "url = \"https://b.example/\"\nurl = \"https://c.example/\"\n", 7, "endpoint[1].url", "set twice"},
		{"inline key twice", head + "url = \"https://b.example/\"\nquery_params = { a = \"1\", a = \"2\" }\n", 7, "endpoint[1].query_params.a", "set twice"},
		{"same endpoint twice", head + "url = \"https://A.example/x?city=Paris\"\n", 6, "endpoint[1].url", "already listed as endpoint[0]"},
		{"long description", head + "url = \"https://b.example/\"\ndescription = \"" + strings.Repeat("d", 501) + "\"\n", 7, "endpoint[1].description", "501 characters"},
		{"syntax", head + "url\n", 6, "", "expected character ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cat.toml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{CatalogFiles: []string{path}})
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *FileError", err, err)
			}
			if fe.Path != path || fe.Line != tt.line || fe.Key != tt.key || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got path %s line %d key %q msg %q\nwant line %d key %q msg containing %q",
					fe.Path, fe.Line, fe.Key, fe.Msg, tt.line, tt.key, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("message does not start with the file name: %s", err)
			}
		})
	}
}

func TestCatalogFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := New(Config{CatalogFiles: []string{path}})
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("error = %v", err)
	}
}
