package fileerr

import "testing"

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Path: "p.toml", Line: 7, Key: "budget.dai", Msg: "unknown key", Hint: "the periods are hour and day"}, "p.toml:7: budget.dai: unknown key\n\thint: the periods are hour and day"},
		{Error{Path: "c.toml", Msg: "file is larger than 1048576 bytes"}, "c.toml: file is larger than 1048576 bytes"},
		{Error{Path: "c.toml", Line: 3, Msg: "bad"}, "c.toml:3: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
