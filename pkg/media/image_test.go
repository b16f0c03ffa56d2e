package media_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"math"
	"runtime"
	"testing"
	"time"

	"qjmz/pkg/media"
)

var (
	red  = color.RGBA{R: 220, G: 20, B: 20, A: 255}
	blue = color.RGBA{R: 20, G: 20, B: 220, A: 255}
)

// chinaTime is a wall-clock time in UTC+8, as a phone in Qianjiang writes it.
func chinaTime(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.FixedZone("", 8*3600))
}

func TestInspectImageAccepts(t *testing.T) {
	t.Parallel()
	plain := encodeJPEG(t, patternImage(64, 48, red, blue))
	full := exifSpec{
		dateTime: "2026:11:20 10:30:00", offset: "+08:00",
		latRef: "N", lat: dms(29, 31, 4800), lngRef: "E", lng: dms(108, 46, 1200),
		withGPSVersion: true,
	}
	tests := []struct {
		name         string
		data         []byte
		declared     string
		wantType     string
		wantW, wantH int
		wantEXIF     bool
		wantTime     *time.Time
		wantOffset   int // seconds east of UTC, checked when wantTime is set
		offsetKnown  bool
		wantGPS      *media.GPS
	}{
		{
			name: "phone jpeg with time, offset and gps", declared: "image/jpeg",
			data:     withEXIF(t, plain, buildEXIF(t, full)),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48, wantEXIF: true,
			wantTime: new(chinaTime(2026, 11, 20, 10, 30, 0)), wantOffset: 8 * 3600, offsetKnown: true,
			wantGPS: &media.GPS{Lat: 29.53, Lng: 108.77},
		},
		{
			name: "offset from another zone is kept", declared: "image/jpeg",
			data:     withEXIF(t, plain, buildEXIF(t, exifSpec{dateTime: "2026:11:20 03:30:00", offset: "+01:00"})),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48, wantEXIF: true,
			wantTime: new(chinaTime(2026, 11, 20, 10, 30, 0)), wantOffset: 3600, offsetKnown: true,
		},
		{
			name: "time without offset is read as UTC+8", declared: "image/jpeg",
			data:     withEXIF(t, plain, buildEXIF(t, exifSpec{dateTime: "2026:11:20 10:30:00"})),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48, wantEXIF: true,
			wantTime: new(chinaTime(2026, 11, 20, 10, 30, 0)), wantOffset: 8 * 3600, offsetKnown: false,
		},
		{
			name: "southern and western gps without version tag", declared: "image/jpeg",
			data: withEXIF(t, plain, buildEXIF(t, exifSpec{
				latRef: "S", lat: dms(33, 52, 3000), lngRef: "W", lng: dms(70, 40, 0),
			})),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48, wantEXIF: true,
			wantGPS: &media.GPS{Lat: -(33 + 52.0/60 + 30.0/3600), Lng: -(70 + 40.0/60)},
		},
		{
			name: "gps 0,0 means no fix", declared: "image/jpeg",
			data: withEXIF(t, plain, buildEXIF(t, exifSpec{
				latRef: "N", lat: dms(0, 0, 0), lngRef: "E", lng: dms(0, 0, 0),
			})),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48, wantEXIF: true,
		},
		{
			name: "jpeg without exif", declared: "image/jpeg", data: plain,
			wantType: media.TypeJPEG, wantW: 64, wantH: 48,
		},
		{
			name: "unreadable exif block counts as none", declared: "image/jpeg",
			data:     withEXIF(t, plain, []byte("MM\x00\x2a\xff\xff\xff\xf0garbage")),
			wantType: media.TypeJPEG, wantW: 64, wantH: 48,
		},
		{
			name: "png", declared: "image/png", data: encodePNG(t, patternImage(30, 20, red, blue)),
			wantType: media.TypePNG, wantW: 30, wantH: 20,
		},
		{
			name: "png with eXIf chunk", declared: "image/png",
			data: pngWithEXIF(t, encodePNG(t, patternImage(30, 20, red, blue)),
				buildEXIF(t, exifSpec{dateTime: "2026:11:20 10:30:00", offset: "+08:00"})),
			wantType: media.TypePNG, wantW: 30, wantH: 20, wantEXIF: true,
			wantTime: new(chinaTime(2026, 11, 20, 10, 30, 0)), wantOffset: 8 * 3600, offsetKnown: true,
		},
		{name: "alias and parameters in declared type", declared: "IMAGE/JPG; charset=binary", data: plain, wantType: media.TypeJPEG, wantW: 64, wantH: 48},
		{name: "nothing declared", declared: "", data: plain, wantType: media.TypeJPEG, wantW: 64, wantH: 48},
		{name: "octet-stream declared", declared: "application/octet-stream", data: plain, wantType: media.TypeJPEG, wantW: 64, wantH: 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, img, err := media.InspectImage(bytes.NewReader(tt.data), tt.declared, media.DefaultLimits())
			if err != nil {
				t.Fatalf("InspectImage: %v", err)
			}
			sum := sha256.Sum256(tt.data)
			if info.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 = %s, want hash of the uploaded bytes", info.SHA256)
			}
			if info.Size != int64(len(tt.data)) {
				t.Errorf("Size = %d, want %d", info.Size, len(tt.data))
			}
			if info.ContentType != tt.wantType {
				t.Errorf("ContentType = %q, want %q", info.ContentType, tt.wantType)
			}
			if info.Width != tt.wantW || info.Height != tt.wantH {
				t.Errorf("size = %dx%d, want %dx%d", info.Width, info.Height, tt.wantW, tt.wantH)
			}
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
				t.Errorf("image bounds = %v, want %dx%d", b, tt.wantW, tt.wantH)
			}
			if info.HasEXIF != tt.wantEXIF {
				t.Errorf("HasEXIF = %v, want %v", info.HasEXIF, tt.wantEXIF)
			}
			switch {
			case tt.wantTime == nil && info.CaptureTime != nil:
				t.Errorf("CaptureTime = %v, want nil", info.CaptureTime)
			case tt.wantTime != nil && info.CaptureTime == nil:
				t.Errorf("CaptureTime = nil, want %v", tt.wantTime)
			case tt.wantTime != nil:
				if !info.CaptureTime.Equal(*tt.wantTime) {
					t.Errorf("CaptureTime = %v, want %v", info.CaptureTime, tt.wantTime)
				}
				if _, off := info.CaptureTime.Zone(); off != tt.wantOffset {
					t.Errorf("CaptureTime offset = %d s, want %d s", off, tt.wantOffset)
				}
				if info.CaptureOffsetKnown != tt.offsetKnown {
					t.Errorf("CaptureOffsetKnown = %v, want %v", info.CaptureOffsetKnown, tt.offsetKnown)
				}
			}
			switch {
			case tt.wantGPS == nil && info.GPS != nil:
				t.Errorf("GPS = %+v, want nil", *info.GPS)
			case tt.wantGPS != nil && info.GPS == nil:
				t.Errorf("GPS = nil, want %+v", *tt.wantGPS)
			case tt.wantGPS != nil:
				if math.Abs(info.GPS.Lat-tt.wantGPS.Lat) > 1e-5 || math.Abs(info.GPS.Lng-tt.wantGPS.Lng) > 1e-5 {
					t.Errorf("GPS = %+v, want %+v within 1e-5", *info.GPS, *tt.wantGPS)
				}
			}
		})
	}
}

func TestInspectImageRejects(t *testing.T) {
	t.Parallel()
	jpg := encodeJPEG(t, patternImage(64, 48, red, blue))
	pngData := encodePNG(t, patternImage(64, 48, red, blue))
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, patternImage(8, 8, red, blue), nil); err != nil {
		t.Fatal(err)
	}
	small := media.DefaultLimits()
	small.MaxImageBytes = int64(len(jpg)) - 1

	tests := []struct {
		name     string
		data     []byte
		declared string
		lim      media.Limits
		want     error
	}{
		{"png declared as jpeg", pngData, "image/jpeg", media.DefaultLimits(), media.ErrTypeMismatch},
		{"jpeg declared as png", jpg, "image/png", media.DefaultLimits(), media.ErrTypeMismatch},
		{"jpeg declared as video", jpg, "video/mp4", media.DefaultLimits(), media.ErrTypeMismatch},
		{"text declared as jpeg", []byte("hello, this is not a photo"), "image/jpeg", media.DefaultLimits(), media.ErrUnsupportedType},
		{"gif", gifBuf.Bytes(), "image/gif", media.DefaultLimits(), media.ErrUnsupportedType},
		{"mp4 declared as jpeg", buildMP4(t, mp4Spec{timescale: 1000, duration: 1000}), "image/jpeg", media.DefaultLimits(), media.ErrUnsupportedType},
		{"truncated jpeg", jpg[:len(jpg)/2], "image/jpeg", media.DefaultLimits(), media.ErrCorrupt},
		{"jpeg cut inside its header", jpg[:40], "image/jpeg", media.DefaultLimits(), media.ErrCorrupt},
		{"truncated png", pngData[:len(pngData)-30], "image/png", media.DefaultLimits(), media.ErrCorrupt},
		{"empty file", nil, "image/jpeg", media.DefaultLimits(), media.ErrCorrupt},
		{"one byte over the size limit", jpg, "image/jpeg", small, media.ErrTooLarge},
		{"decompression bomb png", bombPNG(t, 50000, 50000), "image/png", media.DefaultLimits(), media.ErrTooManyPixels},
		{"png one pixel over the limit", pngData, "image/png", media.Limits{MaxImageBytes: 1 << 20, MaxPixels: 64*48 - 1}, media.ErrTooManyPixels},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, img, err := media.InspectImage(bytes.NewReader(tt.data), tt.declared, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if img != nil || info != (media.ImageInfo{}) {
				t.Errorf("rejected upload still returned an image or facts: %v %+v", img != nil, info)
			}
		})
	}
}

// A bomb must be refused from its header: if the decoder ran it would ask
// for 10 GB, so a few hundred kilobytes of allocation proves it never did.
func TestInspectImageBombAllocatesNothingBig(t *testing.T) {
	bomb := bombPNG(t, 50000, 50000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := media.InspectImage(bytes.NewReader(bomb), "image/png", media.DefaultLimits())
	runtime.ReadMemStats(&after)
	if !errors.Is(err, media.ErrTooManyPixels) {
		t.Fatalf("err = %v, want ErrTooManyPixels", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("allocated %d bytes rejecting a %d-byte bomb", got, len(bomb))
	}
}

func TestInspectImageAppliesOrientation(t *testing.T) {
	t.Parallel()
	// Stored landscape, left half red. Each orientation says which way the
	// camera was held; the returned image must look the way it was shot.
	src := encodeJPEG(t, patternImage(40, 20, red, blue))
	tests := []struct {
		orientation  uint16
		wantW, wantH int
		redAt        image.Point // a point that must be red after orienting
		blueAt       image.Point
	}{
		{1, 40, 20, image.Pt(5, 10), image.Pt(35, 10)},
		{3, 40, 20, image.Pt(35, 10), image.Pt(5, 10)}, // upside down
		{6, 20, 40, image.Pt(10, 5), image.Pt(10, 35)}, // rotate 90° CW: left edge becomes top
		{8, 20, 40, image.Pt(10, 35), image.Pt(10, 5)}, // rotate 90° CCW: left edge becomes bottom
		{2, 40, 20, image.Pt(35, 10), image.Pt(5, 10)}, // mirrored
	}
	for _, tt := range tests {
		t.Run(string(rune('0'+tt.orientation)), func(t *testing.T) {
			t.Parallel()
			data := withEXIF(t, src, buildEXIF(t, exifSpec{orientation: tt.orientation}))
			info, img, err := media.InspectImage(bytes.NewReader(data), "image/jpeg", media.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != tt.wantW || info.Height != tt.wantH || info.Orientation != int(tt.orientation) {
				t.Fatalf("got %dx%d orientation %d, want %dx%d orientation %d",
					info.Width, info.Height, info.Orientation, tt.wantW, tt.wantH, tt.orientation)
			}
			b := img.Bounds()
			if !isReddish(img.At(b.Min.X+tt.redAt.X, b.Min.Y+tt.redAt.Y)) {
				t.Errorf("pixel %v is not red", tt.redAt)
			}
			if isReddish(img.At(b.Min.X+tt.blueAt.X, b.Min.Y+tt.blueAt.Y)) {
				t.Errorf("pixel %v is red, want blue", tt.blueAt)
			}
		})
	}
}

func isReddish(c color.Color) bool {
	r, _, b, _ := c.RGBA()
	return r > 2*b
}
