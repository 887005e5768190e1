package instances_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/sdk/instances"
	"github.com/sluice-gw/sluice/sdk/lifecycle"
	"github.com/sluice-gw/sluice/sdk/schema"
)

type inst struct {
	api   string
	value string
}

func newRegistry(t *testing.T, events *[]string) *instances.Registry[*inst] {
	s := schema.Schema{Attributes: []schema.Attribute{{Name: "value", Type: schema.String}}}
	return instances.New(instances.Options[*inst]{
		Types: []string{"thing", "alias"},
		Decode: func(b instances.Block) (*inst, lifecycle.Diagnostics) {
			d := instances.NewDecoder(b.ConfigJSON, s)
			v := &inst{api: b.APIID}
			d.String("value", &v.value)
			if d.HasErrors() {
				return nil, d.Diagnostics()
			}
			return v, d.Diagnostics()
		},
		Start: func(b instances.Block, v *inst) (*inst, error) {
			if v.value == "fail" {
				return nil, errors.New("cannot start")
			}
			return v, nil
		},
		Replaced: func(old *inst) { *events = append(*events, "replaced "+old.value) },
		Removed:  func(old *inst) { *events = append(*events, "removed "+old.value) },
	})
}

func TestRegistryLifecycle(t *testing.T) {
	var events []string
	r := newRegistry(t, &events)
	ctx := context.Background()

	var vr lifecycle.ValidateResponse
	r.Validate(ctx, &lifecycle.ValidateRequest{Type: "other", ConfigJSON: []byte(`{}`)}, &vr)
	if err := vr.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), `unknown type "other": this plugin provides "thing" and "alias"`) {
		t.Fatalf("unknown type: %v", err)
	}
	vr = lifecycle.ValidateResponse{}
	r.Validate(ctx, &lifecycle.ValidateRequest{Type: "alias", ConfigJSON: []byte(`{"value":1,"extra":true}`)}, &vr)
	if err := vr.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), `extra: unsupported attribute "extra"; allowed: value`) ||
		!strings.Contains(err.Error(), `value: invalid value 1: expected a string, got a JSON number`) {
		t.Fatalf("typed diagnostics: %v", err)
	}
	if r.Len() != 0 {
		t.Fatal("Validate kept an instance")
	}

	configure := func(id, value string) lifecycle.Diagnostics {
		var resp lifecycle.ConfigureResponse
		r.Configure(ctx, &lifecycle.ConfigureRequest{InstanceID: id, APIID: "api", Type: "thing", ConfigJSON: []byte(`{"value":"` + value + `"}`)}, &resp)
		return resp.Diagnostics
	}
	if d := configure("i1", "a"); d.HasErrors() {
		t.Fatal(d.Err())
	}
	if v, err := r.Lookup("i1"); err != nil || v.value != "a" || v.api != "api" {
		t.Fatalf("Lookup = %+v, %v", v, err)
	}
	if d := configure("i1", "fail"); !d.HasErrors() || !strings.Contains(d.Err().Error(), "cannot start") {
		t.Fatalf("Start error not reported: %v", d)
	}
	if v, _ := r.Get("i1"); v.value != "a" {
		t.Fatal("a failed Configure replaced the instance")
	}
	configure("i1", "b")
	r.Unconfigure(ctx, "i1")
	r.Unconfigure(ctx, "i1")
	if _, err := r.Lookup("i1"); err == nil || err.Error() != `instance "i1" is not configured` {
		t.Fatalf("Lookup after Unconfigure: %v", err)
	}
	if got := strings.Join(events, ","); got != "replaced a,removed b" {
		t.Fatalf("events %q", got)
	}
}

func TestRegistryRange(t *testing.T) {
	var events []string
	r := newRegistry(t, &events)
	for _, id := range []string{"i1", "i2", "i3"} {
		var resp lifecycle.ConfigureResponse
		r.Configure(context.Background(), &lifecycle.ConfigureRequest{InstanceID: id, Type: "thing", ConfigJSON: []byte(`{"value":"` + id + `"}`)}, &resp)
	}
	var seen []string
	r.Range(func(id string, v *inst) bool {
		if v.value != id {
			t.Errorf("instance %s holds %q", id, v.value)
		}
		// The callback may call the registry: Range works on a snapshot.
		r.Unconfigure(context.Background(), id)
		seen = append(seen, id)
		return true
	})
	slices.Sort(seen)
	if strings.Join(seen, ",") != "i1,i2,i3" || r.Len() != 0 {
		t.Fatalf("Range saw %v, %d left", seen, r.Len())
	}
	n := 0
	r.Range(func(string, *inst) bool { n++; return false })
	if n != 0 {
		t.Fatalf("Range over an empty registry called f %d times", n)
	}
}

func TestDecoderNestedPaths(t *testing.T) {
	inner := schema.Schema{Attributes: []schema.Attribute{{Name: "n", Type: schema.Number}}}
	s := schema.Schema{Blocks: []schema.Block{{Name: "b", Nesting: schema.List, Schema: inner}, {Name: "one", Schema: inner}}}
	d := instances.NewDecoder([]byte(`{"b":[{"n":1},{"n":1.5,"x":1}],"one":{"n":-1}}`), s)
	for _, sub := range d.List("b", inner) {
		var n int64
		sub.WholeNumber("n", 0, 10, &n)
		d.Merge(sub)
	}
	one := d.Block("one", inner)
	var n int64
	one.WholeNumber("n", 0, 10, &n)
	d.Merge(one)
	got := d.Diagnostics().Err().Error()
	for _, want := range []string{`b.1.x: unsupported attribute "x"`, "b.1.n: n must be a whole number, got 1.5", "one.n: n must be at least 0, got -1"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in %q", want, got)
		}
	}
	d = instances.NewDecoder([]byte(`{"b":{}}`), s)
	if d.List("b", inner); !strings.Contains(d.Diagnostics().Err().Error(), "invalid b blocks {}: expected a list of blocks, got a JSON object") {
		t.Errorf("list type: %v", d.Diagnostics().Err())
	}
}

func TestDrain(t *testing.T) {
	var d instances.Drain
	select {
	case <-d.Idle():
	default:
		t.Fatal("a new Drain is not idle")
	}
	done := d.Open()
	draining := d.Draining()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := d.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an open exchange: %v", err)
	}
	select {
	case <-draining:
	default:
		t.Fatal("Draining not closed by Wait")
	}
	go done()
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	done() // a second call is harmless
	if d.Len() != 0 {
		t.Fatalf("Len = %d", d.Len())
	}
}
