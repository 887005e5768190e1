package config

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diagnostics with source snippets, in file order
// (those without a source range first). Each summary is preceded by the
// file:line:col of its subject, so editors and terminals can jump to it.
// Write errors are ignored: this is the last thing a failing command does.
func (l *Loader) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, color bool) {
	l.mu.Lock()
	files := make(map[string]*hcl.File, len(l.parser.Files()))
	for name, f := range l.parser.Files() {
		files[name] = f
	}
	l.mu.Unlock()
	sorted := SortedDiagnostics(diags)
	tw := hcl.NewDiagnosticTextWriter(w, files, 0, color)
	for _, d := range sorted {
		if d == nil {
			continue
		}
		c := *d
		if c.Subject != nil {
			c.Summary = startString(*c.Subject) + ": " + c.Summary
		}
		_ = tw.WriteDiagnostic(&c)
	}
}

// SortedDiagnostics returns a copy of diags in file order, those without a
// source range first. HCL reports some problems (unsupported arguments among
// them) in map order, so without this a reload's log would list them
// differently from one run to the next.
func SortedDiagnostics(diags hcl.Diagnostics) hcl.Diagnostics {
	sorted := append(hcl.Diagnostics(nil), diags...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a == nil || b == nil || a.Subject == nil || b.Subject == nil {
			return b != nil && b.Subject != nil && (a == nil || a.Subject == nil)
		}
		if a.Subject.Filename != b.Subject.Filename {
			return a.Subject.Filename < b.Subject.Filename
		}
		return a.Subject.Start.Byte < b.Subject.Start.Byte
	})
	return sorted
}

// startString formats the start of a range as file:line:col.
func startString(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// prefixed puts where in front of every summary, so a diagnostic names the
// block it belongs to even when printed without a snippet.
func prefixed(where string, diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if d != nil {
			d.Summary = where + ": " + d.Summary
		}
	}
	return diags
}

// suggest returns the candidate closest to given when it is close enough to
// be a likely typo, using the same threshold as HCL's own "Did you mean".
func suggest(given string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(given, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// quoteList formats names as "a", "b", "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
