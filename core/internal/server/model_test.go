package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/sluice-gw/sluice/core/internal/fakeplugin"
	"github.com/sluice-gw/sluice/core/internal/flow"
)

func TestDeployValidation(t *testing.T) {
	p := fakeplugin.Start(t, "p", func(*grpc.Server) {})
	ep := func() []*EntrypointInstance { return []*EntrypointInstance{{Type: "sse", Plugin: p}} }
	tests := map[string]struct {
		apis []*API
		errs []string
	}{
		"valid": {apis: []*API{{Name: "a", ContextPath: "/a", Entrypoints: ep()}, {Name: "b", ContextPath: "/a/b", Entrypoints: ep()}}},
		"empty": {},
		"everything wrong at once": {
			apis: []*API{
				nil,
				{Name: "", ContextPath: "/x", Entrypoints: ep()},
				{Name: "a", ContextPath: "/a/", Entrypoints: ep()},
				{Name: "a", ContextPath: "a", Entrypoints: ep()},
				{Name: "c", ContextPath: "/c"},
				{Name: "d", ContextPath: "/d", Entrypoints: []*EntrypointInstance{{Type: "sse"}}, Endpoint: &EndpointInstance{Name: "default"}},
				{Name: "e", ContextPath: "/e", Entrypoints: ep(), Flows: flow.Flows{nil, {Name: "f", Publish: []*PolicyInstance{nil}}}},
			},
			errs: []string{
				"api #0 is nil",
				"api #1 has no name",
				`api "a" is declared twice`,
				`api "a": context path "/a" is already used by api "a"`,
				`api "c" has no entrypoint`,
				`api "d": entrypoint #0 has no plugin`,
				`api "d": endpoint "default" has no plugin`,
				`api "e": flow #0 is nil`,
				`api "e": flow "f": publish policy #0 has no plugin`,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := New(Options{})
			err := s.Deploy(tc.apis)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Deploy: %v", err)
				}
				if !s.Deployed() || len(s.APIs()) != len(tc.apis) {
					t.Fatalf("deployment not swapped in")
				}
				return
			}
			if err == nil {
				t.Fatal("Deploy accepted an invalid deployment")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if s.Deployed() {
				t.Fatal("an invalid deployment was swapped in")
			}
		})
	}
}
