package el

import (
	"bytes"
	"testing"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// benchMessage is a message of realistic size: the cost of reading its
// content must not grow with it.
func benchEnv() Env {
	env := fixture()
	env.Message = &gateway.Message{
		Content:    append([]byte("vip:"), bytes.Repeat([]byte("x"), 4096)...),
		Headers:    gateway.Headers{"X-Tenant": {"acme"}, "Content-Type": {"text/plain"}},
		Metadata:   map[string]any{"key": "k", "topic": "orders", "partition": 0, "offset": int64(42)},
		Attributes: map[string]any{"k": "v"},
	}
	return env
}

func benchEval(b *testing.B, src string, want any) {
	tpl := MustCompile(src)
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		v, err := tpl.Eval(env)
		if err != nil || v != want {
			b.Fatalf("Eval(%q) = %v, %v; want %v", src, v, err, want)
		}
	}
}

// BenchmarkMessageCondition is the per-message step condition of the brief.
func BenchmarkMessageCondition(b *testing.B) {
	benchEval(b, "{#message.content.startsWith('vip:')}", true)
}

// BenchmarkMessageConditionOperator is the same test in expr's operator
// spelling, which the package accepted before methods were supported.
func BenchmarkMessageConditionOperator(b *testing.B) {
	benchEval(b, "{#message.content startsWith 'vip:'}", true)
}

func BenchmarkMessageHeader(b *testing.B) {
	benchEval(b, "{#message.headers['x-tenant'][0]}", "acme")
}

func BenchmarkMessageHeaderCondition(b *testing.B) {
	benchEval(b, "{#message.headers['X-Tenant'] != null && message.headers['X-Tenant'][0] == 'acme'}", true)
}

func BenchmarkMessageMetadata(b *testing.B) {
	benchEval(b, "{#message.metadata['topic'] == 'orders'}", true)
}

func BenchmarkRequestPathParam(b *testing.B) {
	benchEval(b, "{#request.pathParams['newTopic']}", "dyn-topic")
}

func BenchmarkMessageMatches(b *testing.B) {
	benchEval(b, "{#message.content.matches('vip:.*')}", true)
}
