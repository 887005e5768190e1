package relay

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pluginv1 "github.com/sluice-gw/sluice/sdk/proto/v1"
)

// TestFieldNumbersMatchDescriptors checks the field numbers codec.go writes
// by hand (it reads and writes raw frames without unmarshalling them)
// against the generated descriptors, so a renumbered field in plugin.proto
// fails here instead of corrupting frames on the wire.
func TestFieldNumbersMatchDescriptors(t *testing.T) {
	tests := map[string]struct {
		got   int
		msg   proto.Message
		field string
	}{
		"fieldSubscribeResponseBatch": {fieldSubscribeResponseBatch, &pluginv1.Subscribe_Response{}, "batch"},
		"fieldBatchMessages":          {fieldBatchMessages, &pluginv1.Subscribe_Batch{}, "messages"},
		"fieldBatchMessages/Deliver":  {fieldBatchMessages, &pluginv1.Connect_Deliver{}, "messages"},
		"fieldMessageError":           {fieldMessageError, &pluginv1.Message{}, "error"},
		"fieldConnectRequestDeliver":  {fieldConnectRequestDeliver, &pluginv1.Connect_Request{}, "deliver"},
		"fieldConnectResponsePublish": {fieldConnectResponsePublish, &pluginv1.Connect_Response{}, "publish"},
		"fieldPublishBatchID":         {fieldPublishBatchID, &pluginv1.Connect_PublishBatch{}, "batch_id"},
		"fieldPublishBatchMessages":   {fieldPublishBatchMessages, &pluginv1.Connect_PublishBatch{}, "messages"},
		"fieldPublishRequestID":       {fieldPublishRequestID, &pluginv1.Publish_Request{}, "batch_id"},
		"fieldPublishRequestInstance": {fieldPublishRequestInstance, &pluginv1.Publish_Request{}, "instance_id"},
		"fieldPublishRequestContext":  {fieldPublishRequestContext, &pluginv1.Publish_Request{}, "context"},
		"fieldPublishRequestMessages": {fieldPublishRequestMessages, &pluginv1.Publish_Request{}, "messages"},
		"fieldConnectRequestOpen":     {fieldConnectRequestOpen, &pluginv1.Connect_Request{}, "open"},
		"fieldOpenInstance":           {fieldOpenInstance, &pluginv1.Connect_Open{}, "instance_id"},
		"fieldOpenContext":            {fieldOpenContext, &pluginv1.Connect_Open{}, "context"},
		"fieldSubscribeRequestStart":  {fieldSubscribeRequestStart, &pluginv1.Subscribe_Request{}, "start"},
		"fieldStartInstance":          {fieldStartInstance, &pluginv1.Subscribe_Start{}, "instance_id"},
		"fieldStartContext":           {fieldStartContext, &pluginv1.Subscribe_Start{}, "context"},
		"fieldStartQoS":               {fieldStartQoS, &pluginv1.Subscribe_Start{}, "qos"},
		"fieldStartLastID":            {fieldStartLastID, &pluginv1.Subscribe_Start{}, "last_id"},
		"fieldStartLimit":             {fieldStartLimit, &pluginv1.Subscribe_Start{}, "limit"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			md := tc.msg.ProtoReflect().Descriptor()
			fd := md.Fields().ByName(protoreflect.Name(tc.field))
			if fd == nil {
				t.Fatalf("%s has no field %q", md.FullName(), tc.field)
			}
			if int(fd.Number()) != tc.got {
				t.Fatalf("%s = %d, but %s is field %d in plugin.proto", name, tc.got, fd.FullName(), fd.Number())
			}
		})
	}
}
