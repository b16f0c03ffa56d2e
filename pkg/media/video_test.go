package media_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"qjmz/pkg/media"
)

func TestInspectVideoAccepts(t *testing.T) {
	t.Parallel()
	shot := time.Date(2026, 11, 20, 6, 15, 0, 0, time.UTC) // 14:15 in Qianjiang
	tests := []struct {
		name         string
		spec         mp4Spec
		declared     string
		wantType     string
		wantDuration time.Duration
		wantCreated  *time.Time
		wantW, wantH int
	}{
		{
			name:     "phone mp4, portrait, 95 s",
			spec:     mp4Spec{creation: since1904(shot), timescale: 600, duration: 95 * 600, width: 1920, height: 1080, rotate90: true, mdatBytes: 4096},
			declared: "video/mp4", wantType: media.TypeMP4,
			wantDuration: 95 * time.Second, wantCreated: &shot, wantW: 1080, wantH: 1920,
		},
		{
			name:     "64-bit movie header with fractional duration",
			spec:     mp4Spec{version1: true, creation: since1904(shot), timescale: 90000, duration: 95*90000 + 45000, width: 1280, height: 720, mdatBytes: 10},
			declared: "video/mp4", wantType: media.TypeMP4,
			wantDuration: 95*time.Second + 500*time.Millisecond, wantCreated: &shot, wantW: 1280, wantH: 720,
		},
		{
			name:     "creation time 0 is unknown",
			spec:     mp4Spec{creation: 0, timescale: 1000, duration: 95000, width: 640, height: 480, mdatBytes: 10},
			declared: "video/mp4", wantType: media.TypeMP4, wantDuration: 95 * time.Second, wantW: 640, wantH: 480,
		},
		{
			name:     "creation time 1970 is unknown",
			spec:     mp4Spec{creation: since1904(time.Unix(0, 0)), timescale: 1000, duration: 95000, width: 640, height: 480, mdatBytes: 10},
			declared: "video/mp4", wantType: media.TypeMP4, wantDuration: 95 * time.Second, wantW: 640, wantH: 480,
		},
		{
			name:     "iPhone mov declared as mp4",
			spec:     mp4Spec{brand: "qt  ", creation: since1904(shot), timescale: 600, duration: 600, width: 1920, height: 1080, mdatBytes: 10},
			declared: "video/mp4", wantType: media.TypeQuickTime,
			wantDuration: time.Second, wantCreated: &shot, wantW: 1920, wantH: 1080,
		},
		{
			name:     "fragmented mp4 has unknown duration",
			spec:     mp4Spec{fragmented: true, creation: since1904(shot), timescale: 1000, duration: 0, width: 640, height: 480, mdatBytes: 10},
			declared: "", wantType: media.TypeMP4, wantCreated: &shot, wantW: 640, wantH: 480,
		},
		{
			name:     "exactly at the duration limit",
			spec:     mp4Spec{creation: since1904(shot), timescale: 1000, duration: 600_000, width: 640, height: 480, mdatBytes: 10},
			declared: "video/quicktime", wantType: media.TypeMP4,
			wantDuration: 600 * time.Second, wantCreated: &shot, wantW: 640, wantH: 480,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := buildMP4(t, tt.spec)
			info, err := media.InspectVideo(bytes.NewReader(data), int64(len(data)), tt.declared, media.DefaultLimits())
			if err != nil {
				t.Fatalf("InspectVideo: %v", err)
			}
			sum := sha256.Sum256(data)
			if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) {
				t.Errorf("SHA256/Size = %s/%d, want hash and length of the upload", info.SHA256, info.Size)
			}
			if info.ContentType != tt.wantType {
				t.Errorf("ContentType = %q, want %q", info.ContentType, tt.wantType)
			}
			if info.Duration != tt.wantDuration {
				t.Errorf("Duration = %v, want %v", info.Duration, tt.wantDuration)
			}
			switch {
			case tt.wantCreated == nil && info.CreationTime != nil:
				t.Errorf("CreationTime = %v, want nil (unknown)", info.CreationTime)
			case tt.wantCreated != nil && (info.CreationTime == nil || !info.CreationTime.Equal(*tt.wantCreated)):
				t.Errorf("CreationTime = %v, want %v", info.CreationTime, tt.wantCreated)
			}
			if info.Width != tt.wantW || info.Height != tt.wantH {
				t.Errorf("size = %dx%d, want %dx%d", info.Width, info.Height, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestInspectVideoRejects(t *testing.T) {
	t.Parallel()
	good := mp4Spec{creation: 3_000_000_000, timescale: 1000, duration: 95_000, width: 640, height: 480, mdatBytes: 2000}
	goodData := buildMP4(t, good)
	tight := media.DefaultLimits()
	tight.MaxVideoBytes = 1000

	long := good
	long.duration = 600_001
	heic := good
	heic.brand = "heic"
	noMoov := good
	noMoov.noMoov = true

	tests := []struct {
		name     string
		data     []byte
		size     int64 // -1: use len(data)
		declared string
		lim      media.Limits
		want     error
	}{
		{"announced size over the limit", goodData, 300 << 20, "video/mp4", media.DefaultLimits(), media.ErrTooLarge},
		{"stored bytes over the limit", goodData, 0, "video/mp4", tight, media.ErrTooLarge},
		{"longer than ten minutes", buildMP4(t, long), -1, "video/mp4", media.DefaultLimits(), media.ErrTooLong},
		{"text declared as mp4", []byte("definitely not a video, just some text"), -1, "video/mp4", media.DefaultLimits(), media.ErrUnsupportedType},
		{"jpeg declared as mp4", encodeJPEG(t, patternImage(8, 8, red, blue)), -1, "video/mp4", media.DefaultLimits(), media.ErrUnsupportedType},
		{"heic photo in an mp4-like box", buildMP4(t, heic), -1, "video/mp4", media.DefaultLimits(), media.ErrUnsupportedType},
		{"too short to sniff", []byte{0, 0, 0}, -1, "video/mp4", media.DefaultLimits(), media.ErrUnsupportedType},
		{"mp4 declared as jpeg", goodData, -1, "image/jpeg", media.DefaultLimits(), media.ErrTypeMismatch},
		{"upload cut off inside mdat", goodData[:len(goodData)-500], -1, "video/mp4", media.DefaultLimits(), media.ErrCorrupt},
		{"fewer bytes stored than announced", goodData, int64(len(goodData)) + 1, "video/mp4", media.DefaultLimits(), media.ErrCorrupt},
		{"no movie header", buildMP4(t, noMoov), -1, "video/mp4", media.DefaultLimits(), media.ErrCorrupt},
		{"moov cut inside mvhd", corruptMvhd(t, goodData), -1, "video/mp4", media.DefaultLimits(), media.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			size := tt.size
			if size < 0 {
				size = int64(len(tt.data))
			}
			info, err := media.InspectVideo(bytes.NewReader(tt.data), size, tt.declared, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if info != (media.VideoInfo{}) {
				t.Errorf("rejected upload still reported facts: %+v", info)
			}
		})
	}
}

// corruptMvhd shrinks the mvhd box so it ends before its fields do, keeping
// every box size consistent so only the header parse can notice.
func corruptMvhd(t *testing.T, data []byte) []byte {
	t.Helper()
	i := bytes.Index(data, []byte("mvhd"))
	if i < 4 {
		t.Fatal("fixture has no mvhd")
	}
	out := append([]byte{}, data...)
	// Turn the tail of mvhd into a free box: mvhd keeps 20 bytes of body.
	mvhdSize := int(out[i-4])<<24 | int(out[i-3])<<16 | int(out[i-2])<<8 | int(out[i-1])
	keep := 8 + 20
	out[i-4], out[i-3], out[i-2], out[i-1] = 0, 0, 0, byte(keep)
	free := mvhdSize - keep
	j := i - 4 + keep
	out[j], out[j+1], out[j+2], out[j+3] = 0, 0, byte(free>>8), byte(free)
	copy(out[j+4:], "free")
	return out
}
