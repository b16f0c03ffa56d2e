package media

import (
	"slices"
	"testing"
	"time"
)

func TestWatermarkLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		wm   Watermark
		want []string
	}{
		{
			name: "server time is shown in China time whatever zone it arrives in",
			wm: Watermark{
				Time:     time.Date(2026, 11, 20, 18, 30, 5, 0, time.UTC),
				Place:    " 29.5300N 108.7700E ",
				RecordID: "R42",
			},
			want: []string{"2026-11-21 02:30:05 +08:00", "29.5300N 108.7700E", "Record R42"},
		},
		{
			name: "empty fields are left out",
			wm:   Watermark{RecordID: "R42"},
			want: []string{"Record R42"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.wm.lines(); !slices.Equal(got, tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestASCIIOnly(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"29.5300N 108.7700E", "29.5300N 108.7700E"},
		{"城西 29.53N", "?? 29.53N"},
		{"a\tb\nc", "a?b?c"},
	}
	for _, tt := range tests {
		if got := asciiOnly(tt.in); got != tt.want {
			t.Errorf("asciiOnly(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
