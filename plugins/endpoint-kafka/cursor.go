package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-gw/sluice/sdk/gateway"
)

// cursorForm is the cursor syntax, quoted in error messages so a client
// knows what to send.
const cursorForm = "<topic>@<partition>#<offset>[,<partition>#<offset>][;<topic>@...]"

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int32
}

// position is the last offset a client saw on one partition. A cursor names
// positions; the subscription resumes after them.
type position struct {
	topicPartition
	offset int64
}

// encodeID renders the id of one record: "topic@partition#offset", base64
// (standard alphabet, with padding) when encode is set (docs/behaviour.md 2.7).
func encodeID(topic string, partition int32, offset int64, encode bool) string {
	buf := make([]byte, 0, len(topic)+24)
	buf = append(buf, topic...)
	buf = append(buf, '@')
	buf = strconv.AppendInt(buf, int64(partition), 10)
	buf = append(buf, '#')
	buf = strconv.AppendInt(buf, offset, 10)
	if !encode {
		return string(buf)
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// formatCursor renders positions in the cursor syntax, grouping partitions
// of one topic ("t1@0#1,1#5;t2@0#3") in the order given.
func formatCursor(ps []position, encode bool) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 && p.topic == ps[i-1].topic {
			b.WriteByte(',')
		} else {
			if i > 0 {
				b.WriteByte(';')
			}
			b.WriteString(p.topic)
			b.WriteByte('@')
		}
		b.WriteString(strconv.FormatInt(int64(p.partition), 10))
		b.WriteByte('#')
		b.WriteString(strconv.FormatInt(p.offset, 10))
	}
	if !encode {
		return b.String()
	}
	return base64.StdEncoding.EncodeToString([]byte(b.String()))
}

// parseCursor parses a client's last seen id (Last-Event-ID, ?cursor=). With
// decode set the text is base64 first; padding and the URL-safe alphabet
// are tolerated because clients pass ids through URLs. Offsets may be -1
// (docs/differences.md #2: nothing delivered yet on that partition).
func parseCursor(s string, decode bool) ([]position, error) {
	raw := strings.TrimSpace(s)
	if decode {
		b, err := decodeBase64(raw)
		if err != nil {
			return nil, fmt.Errorf("cursor %q is not base64: %v", s, err)
		}
		raw = string(b)
	}
	if raw == "" {
		return nil, fmt.Errorf("cursor is empty")
	}
	var out []position
	for _, group := range strings.Split(raw, ";") {
		at := strings.LastIndexByte(group, '@')
		if at <= 0 {
			return nil, fmt.Errorf("%q has no <topic>@", group)
		}
		topic := strings.TrimSpace(group[:at])
		if topic == "" {
			return nil, fmt.Errorf("%q has an empty topic", group)
		}
		for _, part := range strings.Split(group[at+1:], ",") {
			hash := strings.IndexByte(part, '#')
			if hash < 0 {
				return nil, fmt.Errorf("%q is not <partition>#<offset>", part)
			}
			p, err := strconv.ParseInt(strings.TrimSpace(part[:hash]), 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("partition %q is not a non-negative integer", part[:hash])
			}
			o, err := strconv.ParseInt(strings.TrimSpace(part[hash+1:]), 10, 64)
			if err != nil || o < -1 {
				return nil, fmt.Errorf("offset %q is not an integer >= -1", part[hash+1:])
			}
			out = append(out, position{topicPartition{topic, int32(p)}, o})
		}
	}
	return out, nil
}

func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// cursorFailure is the request-level failure for a malformed cursor: the
// client sent something the endpoint cannot position from.
func cursorFailure(lastID string, encoded bool, err error) *gateway.Failure {
	form := cursorForm
	if encoded {
		form += " encoded in base64"
	}
	return &gateway.Failure{
		Status:       400,
		Key:          "FAILURE_CURSOR_INVALID",
		Message:      fmt.Sprintf("Invalid cursor %q (%v): expected %s", lastID, err, form),
		RequestLevel: true,
	}
}

// newUUID returns a random (version 4) UUID in its canonical text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// clientID returns a Kafka client id in the reference's shape: the prefix
// followed by the first group of a random UUID (8 hex characters), e.g.
// gio-apim-consumer-a0eebc99.
func clientID(prefix string) string {
	return prefix + newUUID()[:8]
}
