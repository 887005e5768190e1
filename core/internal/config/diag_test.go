package config

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestSortedDiagnosticsIsFileOrder(t *testing.T) {
	at := func(file string, line, byteOffset int) *hcl.Range {
		return &hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: 3, Byte: byteOffset}}
	}
	diags := hcl.Diagnostics{
		{Summary: "b.hcl line 1", Subject: at("b.hcl", 1, 0)},
		{Summary: "a.hcl line 18", Subject: at("a.hcl", 18, 300)},
		{Summary: "no range"},
		nil,
		{Summary: "a.hcl line 17", Subject: at("a.hcl", 17, 280)},
	}
	sorted := SortedDiagnostics(diags)
	want := []string{"no range", "", "a.hcl line 17", "a.hcl line 18", "b.hcl line 1"}
	if len(sorted) != len(want) {
		t.Fatalf("got %d diagnostics, want %d", len(sorted), len(want))
	}
	for i, w := range want {
		got := ""
		if sorted[i] != nil {
			got = sorted[i].Summary
		}
		if got != w {
			t.Errorf("diagnostic %d = %q, want %q", i, got, w)
		}
	}
	if diags[1].Summary != "a.hcl line 18" {
		t.Error("SortedDiagnostics reordered its argument")
	}
}
