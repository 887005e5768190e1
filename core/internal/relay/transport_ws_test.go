package relay

import (
	"strings"
	"sync"
	"testing"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

func TestInboxBounds(t *testing.T) {
	in := &inbox{}
	in.cond = sync.NewCond(&in.mu)
	for range maxInboundBatch {
		in.put(&pluginv1.Connect_Frame{Data: []byte("x")})
	}
	extra := make(chan struct{})
	go func() {
		in.put(&pluginv1.Connect_Frame{Data: []byte("last")}) // waits: the inbox is full
		in.close()
		close(extra)
	}()
	if got := in.take(); len(got) != maxInboundBatch {
		t.Fatalf("first batch has %d frames, want %d", len(got), maxInboundBatch)
	}
	<-extra
	if got := in.take(); len(got) != 1 || string(got[0].GetData()) != "last" {
		t.Fatalf("second batch %v", got)
	}
	if got := in.take(); got != nil {
		t.Fatalf("closed inbox returned %v", got)
	}
}

func TestInboxByteBudget(t *testing.T) {
	in := &inbox{}
	in.cond = sync.NewCond(&in.mu)
	big := []byte(strings.Repeat("b", maxInboundBytes))
	in.put(&pluginv1.Connect_Frame{Data: big})
	done := make(chan struct{})
	go func() {
		in.put(&pluginv1.Connect_Frame{Data: []byte("small")}) // waits for the budget
		close(done)
	}()
	if got := in.take(); len(got) != 1 || len(got[0].GetData()) != maxInboundBytes {
		t.Fatalf("first batch: %d frames", len(got))
	}
	<-done
	if got := in.take(); len(got) != 1 || string(got[0].GetData()) != "small" {
		t.Fatalf("second batch %v", got)
	}
}

func TestTruncateReason(t *testing.T) {
	tests := map[string]struct {
		in   string
		want int
	}{
		"short":          {"Bye", 3},
		"exactly 123":    {strings.Repeat("a", 123), 123},
		"long ascii":     {strings.Repeat("a", 200), 123},
		"utf-8 boundary": {strings.Repeat("a", 122) + "é" + "zz", 122},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := truncateReason(tc.in); len(got) != tc.want || !strings.HasPrefix(tc.in, got) {
				t.Fatalf("truncateReason gave %d bytes, want %d", len(got), tc.want)
			}
		})
	}
}
