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
