package httpapi

import "testing"

func TestHasLoneSurrogate(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"Plain", `{"body":"hello"}`, false},
		{"Pair", `{"body":"\ud83d\ude00"}`, false},
		{"BMPEscape", `{"body":"\u00e9\u4e2d"}`, false},
		{"EscapedBackslashThenU", `{"body":"\\ud800"}`, false},
		{"LoneHigh", `{"body":"\ud800"}`, true},
		{"LoneHighAtEnd", `{"body":"x\uD83D"}`, true},
		{"LoneLow", `{"body":"\ude00"}`, true},
		{"HighThenNonLow", `{"body":"\ud83d\u0041"}`, true},
		{"HighThenOtherEscape", `{"body":"\ud83d\n"}`, true},
		{"TwoHighs", `{"body":"\ud83d\ud83d\ude00"}`, true},
		{"Truncated", `{"body":"\ud8`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasLoneSurrogate([]byte(tt.body)); got != tt.want {
				t.Fatalf("hasLoneSurrogate(%s) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}
