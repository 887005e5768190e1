package main

import (
	"testing"

	"github.com/sluice-gw/sluice/sdk/entrypoint"
	"github.com/sluice-gw/sluice/sdk/plugintest"
)

// Once a batch is published, its frames' cost (length plus one each) is
// granted back to the core as inbound credit, and not before.
func TestPublishedFramesAreGrantedBack(t *testing.T) {
	_, ex := start(t, map[string]any{"subscriber": map[string]any{"enabled": false}})
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{{Data: []byte("abc")}, {Data: []byte("de")}}})
	p := ex.Expect(t, plugintest.ActionPublish, wait)
	if len(p.Publish.Messages) != 2 {
		t.Fatalf("published %d messages, want 2", len(p.Publish.Messages))
	}
	if g := ex.Granted(); g != 0 {
		t.Fatalf("granted %d before the batch was published", g)
	}
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Published, BatchID: p.Publish.BatchID})
	// The grant travels before anything else the plugin does next: send one
	// more frame and wait for its batch, by which time the grant is in.
	ex.Send(t, entrypoint.Event{Kind: entrypoint.Inbound, Frames: []entrypoint.Frame{{Data: []byte("f")}}})
	ex.Expect(t, plugintest.ActionPublish, wait)
	if g := ex.Granted(); g != 3+2+2 {
		t.Fatalf("granted %d, want 7 (5 bytes and 2 frames)", g)
	}
}
