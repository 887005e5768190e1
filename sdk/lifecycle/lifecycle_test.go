package lifecycle

import "testing"

func TestReadsRequestBody(t *testing.T) {
	cases := []struct {
		name string
		caps []string
		cfg  string
		want bool
	}{
		{"no capability: always", nil, `{"topics":["a"]}`, true},
		{"el only, not named", []string{"limit", CapabilityBodyOnlyInEL}, `{"topics":["a"]}`, false},
		{"el only, named", []string{CapabilityBodyOnlyInEL}, `{"key":"{#jsonPath(#request.content, '$.id')}"}`, true},
	}
	for _, tc := range cases {
		if got := ReadsRequestBody(tc.caps, []byte(tc.cfg)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
