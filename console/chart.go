package console

import (
	"time"

	"github.com/x402-mcp/x402-mcp/ledger"
)

// Geometry of a time chart's SVG, in its own units (the viewBox); the
// browser scales it to the page's width.
const (
	chartW      = 960
	chartH      = 160
	chartLeft   = 8
	chartBottom = 20 // room for the labels
	chartTop    = 14 // room for the maximum's label
)

// chart is a bar chart of spending over time, laid out here so that the
// template only places rectangles and labels: no script draws it.
type chart struct {
	W, H   int
	Base   int // y of the axis
	Bars   []bar
	Labels []label
	Max    string // USD of the tallest bar
	Total  string // USD over the whole chart
	Empty  bool
}

type bar struct {
	X, Y, W, H int
	Title      string // the tooltip: the bucket's time and sum
}

type label struct {
	X    int
	Y    int
	Text string
}

// timeChart sums the counted payments into n buckets of span, the last
// one holding now, and lays them out as bars; every labelEvery-th bucket
// is labelled in layout (UTC).
func timeChart(counted []ledger.Record, now time.Time, span time.Duration, n int, layout string, labelEvery int) chart {
	c := chart{W: chartW, H: chartH, Base: chartH - chartBottom}
	end := now.UTC().Truncate(span).Add(span)
	start := end.Add(-time.Duration(n) * span)
	sums := make([]int64, n)
	var total int64
	for _, r := range counted {
		if r.Created.Before(start) || !r.Created.Before(end) {
			continue
		}
		i := int(r.Created.Sub(start) / span)
		sums[i] = addSat(sums[i], r.USDNano)
		total = addSat(total, r.USDNano)
	}
	var top int64
	for _, s := range sums {
		top = max(top, s)
	}
	c.Max, c.Total, c.Empty = ledger.FormatUSDNano(top), ledger.FormatUSDNano(total), total == 0
	plot := chartH - chartBottom - chartTop
	width := chartW - chartLeft
	for i, s := range sums {
		t := start.Add(time.Duration(i) * span)
		h := 0
		if top > 0 && s > 0 {
			// Integer scaling: a bar is at least 2 units tall when
			// anything was spent.
			h = max(2, int(s/(top/int64(plot)+1)))
			h = min(h, plot)
		}
		// Bars share the width exactly: bucket i spans [x, next).
		x, next := chartLeft+i*width/n, chartLeft+(i+1)*width/n
		c.Bars = append(c.Bars, bar{X: x + 1, Y: chartTop + plot - h, W: max(1, next-x-2), H: h,
			Title: t.Format("2006-01-02 15:04") + " UTC: " + ledger.FormatUSDNano(s) + " USD"})
		if i%labelEvery == 0 {
			c.Labels = append(c.Labels, label{X: x + 1, Y: chartH - 6, Text: t.Format(layout)})
		}
	}
	return c
}
