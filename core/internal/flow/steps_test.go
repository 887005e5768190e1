package flow

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gw/sluice/sdk/el"
	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// scriptedPolicy answers at once and records what each instance received.
// Its behaviour depends on the instance id:
//
//	upper   upper-cases every message's content
//	drop-b  drops messages whose content starts with "b"
//	extra   appends a message of its own after each message (tag 0)
//	set     (request phase) sets the attribute "set" to "yes"
type scriptedPolicy struct {
	pluginv1.UnimplementedPolicyServer
	mu       sync.Mutex
	requests []string   // instance ids, in call order
	batches  [][]string // contents per OnMessages call
	tags     [][]uint64 // tags per OnMessages call, as received
}

func (s *scriptedPolicy) OnRequest(_ context.Context, req *pluginv1.OnRequest_Request) (*pluginv1.OnRequest_Response, error) {
	s.mu.Lock()
	s.requests = append(s.requests, req.GetInstanceId())
	s.mu.Unlock()
	resp := &pluginv1.OnRequest_Response{}
	if req.GetInstanceId() == "set" {
		resp.SetAttributes = map[string]*structpb.Value{"set": structpb.NewStringValue("yes")}
	}
	return resp, nil
}

func (s *scriptedPolicy) OnMessages(stream pluginv1.Policy_OnMessagesServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		var contents []string
		var tags []uint64
		var out []*pluginv1.Message
		for _, m := range req.GetMessages() {
			contents = append(contents, string(m.GetContent()))
			tags = append(tags, m.GetTag())
			switch req.GetInstanceId() {
			case "upper":
				m.Content = bytes.ToUpper(m.GetContent())
				out = append(out, m)
			case "drop-b":
				if !bytes.HasPrefix(m.GetContent(), []byte("b")) {
					out = append(out, m)
				}
			case "extra":
				out = append(out, m, &pluginv1.Message{Content: []byte("extra-" + string(m.GetContent()))})
			default:
				out = append(out, m)
			}
		}
		s.mu.Lock()
		s.batches = append(s.batches, contents)
		s.tags = append(s.tags, tags)
		s.mu.Unlock()
		if err := stream.Send(&pluginv1.OnMessages_Response{BatchId: req.GetBatchId(), Messages: out}); err != nil {
			return nil
		}
	}
}

func (s *scriptedPolicy) calls() ([]string, [][]string, [][]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...), append([][]string(nil), s.batches...), append([][]uint64(nil), s.tags...)
}

func newScripted(t *testing.T) (*scriptedPolicy, *fakePlugin) {
	s := &scriptedPolicy{}
	return s, startFakePlugin(t, "pol", func(g *grpc.Server) { pluginv1.RegisterPolicyServer(g, s) })
}

func TestOnRequestConditions(t *testing.T) {
	type stepSpec struct{ id, cond string }
	tests := map[string]struct {
		steps   []stepSpec
		headers []string
		called  []string
		attr    string
	}{
		"no condition runs": {steps: []stepSpec{{"a", ""}}, called: []string{"a"}},
		"true runs":         {steps: []stepSpec{{"a", "{#request.headers['X-On'] != null}"}}, headers: []string{"X-On", "1"}, called: []string{"a"}},
		"false costs no hop": {steps: []stepSpec{{"a", "{#request.headers['X-On'] != null}"}, {"b", ""}},
			called: []string{"b"}},
		"failed evaluation is false": {steps: []stepSpec{{"a", "{#request.headers['X-On'][0] == '1'}"}}},
		"sees attributes set before": {steps: []stepSpec{{"set", ""}, {"after", "{#context.attributes['set'] == 'yes'}"}},
			called: []string{"set", "after"}, attr: "yes"},
		"does not see attributes set after": {steps: []stepSpec{{"before", "{#context.attributes['set'] == 'yes'}"}, {"set", ""}},
			called: []string{"set"}, attr: "yes"},
		"sees api id": {steps: []stepSpec{{"a", "{#api.id == 'api'}"}}, called: []string{"a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, p := newScripted(t)
			e := NewEngine()
			defer e.Close()
			var steps []*PolicyInstance
			for _, sp := range tc.steps {
				pi := &PolicyInstance{Type: "t", InstanceID: sp.id, Plugin: p}
				if sp.cond != "" {
					pi.Condition = el.MustCompile(sp.cond)
				}
				steps = append(steps, pi)
			}
			c := request("GET", "/", tc.headers...)
			if f := e.OnRequest(context.Background(), steps, c); f != nil {
				t.Fatal(f)
			}
			called, _, _ := s.calls()
			if !reflect.DeepEqual(called, tc.called) {
				t.Fatalf("called %v, want %v", called, tc.called)
			}
			if got := c.GetAttributes()["set"].GetStringValue(); got != tc.attr {
				t.Fatalf("attribute set = %q, want %q", got, tc.attr)
			}
		})
	}
}

func msgs(contents ...string) []*pluginv1.Message {
	var out []*pluginv1.Message
	for i, c := range contents {
		out = append(out, &pluginv1.Message{Content: []byte(c), Tag: uint64(i + 1)})
	}
	return out
}

func contents(ms []*pluginv1.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.GetContent()))
	}
	return out
}

func tagsOf(ms []*pluginv1.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.GetTag())
	}
	return out
}

func TestOnMessagesMessageCondition(t *testing.T) {
	type stepSpec struct{ id, cond string }
	vip := "{#message.content matches 'vip.*'}"
	tests := map[string]struct {
		phase   string
		steps   []stepSpec
		in      []string
		out     []string
		tags    []uint64
		batches [][]string // what the plugin received, per call
	}{
		"no condition, whole batch": {phase: PhasePublish, steps: []stepSpec{{"upper", ""}},
			in: []string{"a", "b"}, out: []string{"A", "B"}, tags: []uint64{1, 2}, batches: [][]string{{"a", "b"}}},
		"only passing messages go, others keep their place": {phase: PhasePublish, steps: []stepSpec{{"upper", vip}},
			in: []string{"a", "vip1", "b", "vip2", "c"}, out: []string{"a", "VIP1", "b", "VIP2", "c"}, tags: []uint64{1, 2, 3, 4, 5},
			batches: [][]string{{"vip1", "vip2"}}},
		"none passes: no hop": {phase: PhasePublish, steps: []stepSpec{{"upper", vip}},
			in: []string{"a", "b"}, out: []string{"a", "b"}, tags: []uint64{1, 2}},
		"all pass: one call": {phase: PhasePublish, steps: []stepSpec{{"upper", vip}},
			in: []string{"vip1", "vip2"}, out: []string{"VIP1", "VIP2"}, tags: []uint64{1, 2}, batches: [][]string{{"vip1", "vip2"}}},
		"a passing message dropped by the plugin": {phase: PhasePublish, steps: []stepSpec{{"drop-b", "{#message.content matches 'b.*|x'}"}},
			in: []string{"a", "b1", "x", "b2"}, out: []string{"a", "x"}, tags: []uint64{1, 3}, batches: [][]string{{"b1", "x", "b2"}}},
		"messages the plugin adds follow their source": {phase: PhasePublish, steps: []stepSpec{{"extra", vip}},
			in: []string{"vip1", "a", "vip2"}, out: []string{"vip1", "extra-vip1", "a", "vip2", "extra-vip2"}, tags: []uint64{1, 0, 2, 3, 0},
			batches: [][]string{{"vip1", "vip2"}}},
		"chained steps see the previous output": {phase: PhasePublish, steps: []stepSpec{{"upper", vip}, {"drop-b", "{#message.content matches '[Vb].*'}"}},
			in: []string{"vip1", "b1", "a"}, out: []string{"VIP1", "a"}, tags: []uint64{1, 3},
			batches: [][]string{{"vip1"}, {"VIP1", "b1"}}},
		"message headers": {phase: PhasePublish, steps: []stepSpec{{"upper", "{#message.headers['X-Up'] != null}"}},
			in: []string{"a", "b"}, out: []string{"a", "B"}, tags: []uint64{1, 2}, batches: [][]string{{"b"}}},
		"message attributes and metadata": {phase: PhasePublish, steps: []stepSpec{{"upper", "{#message.attributes['k'] == 1 && #message.metadata['topic'] == 't'}"}},
			in: []string{"a", "b"}, out: []string{"A", "b"}, tags: []uint64{1, 2}, batches: [][]string{{"a"}}},
		"request in a message condition": {phase: PhasePublish, steps: []stepSpec{{"upper", "{#request.method == 'POST'}"}},
			in: []string{"a"}, out: []string{"a"}, tags: []uint64{1}},
		"subscribe: dropped tail carries its tag": {phase: PhaseSubscribe, steps: []stepSpec{{"drop-b", ""}},
			in: []string{"a", "b1", "c", "b2", "b3"}, out: []string{"a", "c"}, tags: []uint64{1, 5}, batches: [][]string{{"a", "b1", "c", "b2", "b3"}}},
		"publish: no tag carried": {phase: PhasePublish, steps: []stepSpec{{"drop-b", ""}},
			in: []string{"a", "b1"}, out: []string{"a"}, tags: []uint64{1}, batches: [][]string{{"a", "b1"}}},
		"subscribe: untouched tail keeps tags": {phase: PhaseSubscribe, steps: []stepSpec{{"drop-b", vip}},
			in: []string{"b0", "vip", "b1"}, out: []string{"b0", "vip", "b1"}, tags: []uint64{1, 2, 3}, batches: [][]string{{"vip"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, p := newScripted(t)
			e := NewEngine()
			defer e.Close()
			var steps []*PolicyInstance
			for _, sp := range tc.steps {
				pi := &PolicyInstance{Type: "t", InstanceID: sp.id, Plugin: p}
				if sp.cond != "" {
					pi.MessageCondition = el.MustCompile(sp.cond)
				}
				steps = append(steps, pi)
			}
			in := msgs(tc.in...)
			if name == "message headers" {
				in[1].Headers = []*pluginv1.Header{{Name: "x-up", Values: []string{"1"}}}
			}
			if name == "message attributes and metadata" {
				in[0].Attributes = map[string]*structpb.Value{"k": structpb.NewNumberValue(1)}
				in[0].Metadata = map[string]*structpb.Value{"topic": structpb.NewStringValue("t")}
			}
			out, f := e.OnMessages(context.Background(), tc.phase, steps, request("GET", "/"), in)
			if f != nil {
				t.Fatal(f)
			}
			if got := contents(out); !reflect.DeepEqual(got, tc.out) {
				t.Errorf("out %v, want %v", got, tc.out)
			}
			if got := tagsOf(out); !reflect.DeepEqual(got, tc.tags) {
				t.Errorf("tags %v, want %v", got, tc.tags)
			}
			_, batches, _ := s.calls()
			if !reflect.DeepEqual(batches, tc.batches) {
				t.Errorf("plugin received %v, want %v", batches, tc.batches)
			}
		})
	}
}

// The plugin sees distinct tags for a partial batch even when the messages
// have none (publish), and the caller's messages get theirs back.
func TestOnMessagesPartialBatchTags(t *testing.T) {
	s, p := newScripted(t)
	e := NewEngine()
	defer e.Close()
	in := []*pluginv1.Message{{Content: []byte("a")}, {Content: []byte("vip")}, {Content: []byte("vip2")}}
	step := &PolicyInstance{Type: "t", InstanceID: "keep", Plugin: p, MessageCondition: el.MustCompile("{#message.content matches 'vip.*'}")}
	out, f := e.OnMessages(context.Background(), PhasePublish, []*PolicyInstance{step}, request("POST", "/"), in)
	if f != nil {
		t.Fatal(f)
	}
	_, _, tags := s.calls()
	if len(tags) != 1 || len(tags[0]) != 2 || tags[0][0] == tags[0][1] {
		t.Fatalf("plugin saw tags %v, want two distinct ones", tags)
	}
	if got := tagsOf(out); !reflect.DeepEqual(got, []uint64{0, 0, 0}) {
		t.Fatalf("tags after the call %v, want the original zeros", got)
	}
	if got := contents(out); !reflect.DeepEqual(got, []string{"a", "vip", "vip2"}) {
		t.Fatalf("out %v", got)
	}
}

// A message condition that fails to evaluate is false for that message.
func TestOnMessagesFailingConditionIsFalse(t *testing.T) {
	s, p := newScripted(t)
	e := NewEngine()
	defer e.Close()
	step := &PolicyInstance{Type: "t", InstanceID: "upper", Plugin: p, MessageCondition: el.MustCompile("{#message.headers['X-K'][0] == 'v'}")}
	in := msgs("a", "b")
	in[1].Headers = []*pluginv1.Header{{Name: "X-K", Values: []string{"v"}}}
	out, f := e.OnMessages(context.Background(), PhasePublish, []*PolicyInstance{step}, request("POST", "/"), in)
	if f != nil {
		t.Fatal(f)
	}
	if got := strings.Join(contents(out), ","); got != "a,B" {
		t.Fatalf("out %s, want a,B", got)
	}
	_, batches, _ := s.calls()
	if !reflect.DeepEqual(batches, [][]string{{"b"}}) {
		t.Fatalf("plugin received %v", batches)
	}
}

// A false message_condition on every message must not reach the plugin at
// all: this one is down, so any call would fail.
func TestOnMessagesNoPassNoCall(t *testing.T) {
	p := &fakePlugin{name: "pol", down: true}
	e := NewEngine()
	defer e.Close()
	step := &PolicyInstance{Type: "t", InstanceID: "x", Plugin: p, MessageCondition: el.MustCompile("{#message.content == 'never'}")}
	in := msgs("a", "b")
	out, f := e.OnMessages(context.Background(), PhaseSubscribe, []*PolicyInstance{step}, request("GET", "/"), in)
	if f != nil || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Fatalf("got %v %v, want the batch untouched", out, f)
	}
	req := &PolicyInstance{Type: "t", InstanceID: "x", Plugin: p, Condition: el.MustCompile("{#request.method == 'POST'}")}
	if f := e.OnRequest(context.Background(), []*PolicyInstance{req}, request("GET", "/")); f != nil {
		t.Fatalf("false condition called the plugin: %v", f)
	}
}

func BenchmarkFalseMessageCondition(b *testing.B) {
	p := &fakePlugin{name: "pol", down: true}
	e := NewEngine()
	defer e.Close()
	step := &PolicyInstance{Type: "t", InstanceID: "x", Plugin: p, MessageCondition: el.MustCompile("{#message.content == 'never'}")}
	in := msgs("a", "b", "c", "d", "e", "f", "g", "h")
	c := request("GET", "/", "Accept", "text/event-stream")
	b.ReportAllocs()
	for b.Loop() {
		e.OnMessages(context.Background(), PhaseSubscribe, []*PolicyInstance{step}, c, in)
	}
}
