// Package suggest finds the word a typo was meant to be: a policy key, a
// command's name. It is the one edit-distance routine of the project.
package suggest

// Closest is the candidate within two edits of s, if exactly one is the
// nearest; "" if none is close or two are equally close.
func Closest(s string, candidates []string) string {
	best, bestD, tie := "", 3, false
	for _, c := range candidates {
		d := Distance(s, c)
		switch {
		case d < bestD:
			best, bestD, tie = c, d, false
		case d == bestD:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// Distance is the Levenshtein distance between a and b, in bytes; strings
// longer than 64 bytes count as 64 apart (they are no typo of a word).
func Distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Nearest is the first candidate within two edits of s that no later one
// beats; "" if none is that close.
func Nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := Distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
