package suggest

import "testing"

func TestClosest(t *testing.T) {
	words := []string{"serve", "init", "demo", "devnet", "deny"}
	for in, want := range map[string]string{"sreve": "serve", "servee": "serve", "xyz": "", "dmeo": "demo", "den": "deny"} {
		if got := Closest(in, words); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
	if Distance("kitten", "sitting") != 3 || Distance("", "abc") != 3 || Distance("same", "same") != 0 {
		t.Error("Distance")
	}
}
