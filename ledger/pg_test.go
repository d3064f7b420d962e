package ledger

import (
	"context"
	"testing"
)

func TestPostgresSmoke(t *testing.T) {
	b := testBackends[1]
	l := b.openNew(t, Options{})
	ctx := context.Background()
	lim := Limit{Name: "daily", Window: 24 * 3600e9, MaxUSDNano: 3000}
	for i := 0; i < 3; i++ {
		if _, err := l.Reserve(ctx, rec("a.example", 1000), []Limit{lim}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Reserve(ctx, rec("a.example", 1000), []Limit{lim}); err == nil {
		t.Fatal("over budget admitted")
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
