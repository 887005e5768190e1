package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/core/internal/flow"
)

func TestFlowSelectorsAndMeta(t *testing.T) {
	f := mustLoad(t, "testdata/valid/flows.hcl")
	flows := f.APIs[0].Flows
	if len(flows) != 3 {
		t.Fatalf("%d flows, want 3", len(flows))
	}
	byTopic, exact, always := flows[0], flows[1], flows[2]

	sel := byTopic.Selector
	if sel.Path == nil || sel.Path.String() != "/:topic" || !reflect.DeepEqual(sel.Path.Params(), []string{"topic"}) {
		t.Fatalf("path %v", sel.Path)
	}
	if !sel.Path.Match("/t1/x", nil) {
		t.Errorf("starts-with path does not match a longer path")
	}
	if !reflect.DeepEqual(sel.Methods, []string{"POST", "GET"}) {
		t.Errorf("methods %v", sel.Methods)
	}
	if sel.Condition == nil || sel.Condition.Source() != "{#request.headers['X-Tenant'] != null}" {
		t.Errorf("condition %v", sel.Condition)
	}
	if !exact.Selector.Path.Match("/", nil) || exact.Selector.Path.Match("/x", nil) {
		t.Errorf("equals path matches wrongly")
	}
	if !reflect.DeepEqual(always.Selector, flow.Selector{}) {
		t.Errorf("flow without selectors has %+v", always.Selector)
	}

	req := byTopic.Phases[PhaseRequest][0]
	if req.Condition == nil || req.MessageCondition != nil || req.Disabled {
		t.Errorf("request step meta: %+v", req)
	}
	resp := byTopic.Phases[PhaseResponse]
	if len(resp) != 2 || resp[0].Condition == nil || resp[0].Condition.Source() != "{#request.method == 'GET'}" ||
		resp[0].MessageCondition != nil || resp[0].Disabled || !resp[1].Disabled {
		t.Errorf("response steps: %+v", resp)
	}
	if !jsonValid(resp[0].ConfigJSON) || strings.Contains(string(resp[0].ConfigJSON), "condition") {
		t.Errorf("response step ConfigJSON %s", resp[0].ConfigJSON)
	}
	pub := byTopic.Phases[PhasePublish][0]
	if pub.MessageCondition == nil || pub.Condition != nil || pub.Disabled {
		t.Errorf("publish step meta: %+v", pub)
	}
	if sub := exact.Phases[PhaseSubscribe][0]; !sub.Disabled {
		t.Errorf("enabled = false not recorded")
	}
	// The plugin never sees the meta-arguments.
	for _, pb := range []*PluginBlock{req, pub, exact.Phases[PhaseSubscribe][0]} {
		for _, m := range MetaArguments {
			if strings.Contains(string(pb.ConfigJSON), `"`+m+`"`) {
				t.Errorf("%s: ConfigJSON %s holds %q", pb.Where, pb.ConfigJSON, m)
			}
		}
	}
}

// An EL mistake in a plain string is reported at its own column, so
// file:line:col points at the misspelt field.
func TestConditionDiagnosticColumn(t *testing.T) {
	l := NewLoader()
	_, diags := loadAndDecode(t, l, "testdata/invalid/flows.hcl", newFakeSchemas())
	for _, d := range diags {
		if strings.Contains(d.Summary, `flow "condition": Invalid condition`) {
			if d.Subject.Start.Line != 26 || d.Subject.Start.Column != 28 {
				t.Fatalf("condition diagnostic at %d:%d, want 26:28 (the misspelt field)", d.Subject.Start.Line, d.Subject.Start.Column)
			}
			return
		}
	}
	t.Fatal("no condition diagnostic")
}

// A response-phase step's diagnostics point at the offending text:
// file:line:col of the misspelt field of a condition, and of the attribute
// name of a meta-argument the phase cannot take.
func TestResponsePhaseDiagnosticPositions(t *testing.T) {
	l := NewLoader()
	_, diags := loadAndDecode(t, l, "testdata/invalid/response_phase.hcl", newFakeSchemas())
	want := map[string][2]int{
		"Invalid condition": {14, 32},
		"message_condition does not apply in the response phase": {10, 9},
		"Duplicate response phase":                               {19, 5},
	}
	for _, d := range diags {
		for summary, pos := range want {
			if !strings.Contains(d.Summary, summary) {
				continue
			}
			if d.Subject.Filename != "testdata/invalid/response_phase.hcl" || d.Subject.Start.Line != pos[0] || d.Subject.Start.Column != pos[1] {
				t.Errorf("%q at %s:%d:%d, want line %d col %d", summary, d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, pos[0], pos[1])
			}
			delete(want, summary)
		}
	}
	for summary := range want {
		t.Errorf("no %q diagnostic", summary)
	}
}
