package media_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"qjmz/pkg/media"
)

var gray = color.RGBA{R: 128, G: 128, B: 128, A: 255}

func decodeJPEG(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not a JPEG: %v", err)
	}
	return img
}

func sampleWatermark() media.Watermark {
	return media.Watermark{
		Time:     time.Date(2026, 11, 20, 2, 30, 5, 0, time.UTC),
		Place:    "29.5300N 108.7700E",
		RecordID: "R20261120-0042",
	}
}

// lumaPlane is the decoded JPEG's brightness channel; reading it directly
// keeps pixel checks fast under -race.
func lumaPlane(t *testing.T, img image.Image) *image.YCbCr {
	t.Helper()
	y, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("decoded JPEG is %T, want *image.YCbCr", img)
	}
	return y
}

// luma is the mean brightness and the brightest value in rows [y0,y1).
func luma(t *testing.T, img image.Image, y0, y1 int) (mean float64, peak uint8) {
	t.Helper()
	p := lumaPlane(t, img)
	var sum, n uint64
	for y := y0; y < y1; y++ {
		for _, l := range p.Y[y*p.YStride : y*p.YStride+p.Rect.Dx()] {
			sum += uint64(l)
			n++
			peak = max(peak, l)
		}
	}
	return float64(sum) / float64(n), peak
}

func TestRenderDisplaySizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		w, h           int
		dispW, dispH   int
		thumbW, thumbH int
	}{
		{"landscape", 3200, 2400, 1600, 1200, 320, 240},
		{"portrait", 1200, 1800, 1067, 1600, 213, 320},
		{"exactly the display size", 1600, 900, 1600, 900, 320, 180},
		{"small photo is not enlarged", 200, 100, 200, 100, 200, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			disp, thumb, err := media.RenderDisplay(patternImage(tt.w, tt.h, red, blue), sampleWatermark())
			if err != nil {
				t.Fatal(err)
			}
			if b := decodeJPEG(t, disp).Bounds(); !near(b.Dx(), tt.dispW) || !near(b.Dy(), tt.dispH) {
				t.Errorf("display = %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.dispW, tt.dispH)
			}
			if b := decodeJPEG(t, thumb).Bounds(); !near(b.Dx(), tt.thumbW) || !near(b.Dy(), tt.thumbH) {
				t.Errorf("thumb = %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.thumbW, tt.thumbH)
			}
		})
	}
}

// near allows one pixel of rounding in the scaled edge.
func near(got, want int) bool { return got >= want-1 && got <= want+1 }

func TestRenderDisplayBurnsWatermarkIntoBottomBand(t *testing.T) {
	t.Parallel()
	src := uniformImage(1600, 1200, gray)
	disp, thumb, err := media.RenderDisplay(src, sampleWatermark())
	if err != nil {
		t.Fatal(err)
	}
	img := decodeJPEG(t, disp)
	h := img.Bounds().Dy()

	top, _ := luma(t, img, 0, h/2)
	if top < 124 || top > 132 {
		t.Errorf("top half mean brightness %.1f, want the untouched 128", top)
	}
	// The band occupies the bottom of the photo: darker on average, with
	// bright text strokes in it.
	bottom, peak := luma(t, img, h-h/20, h)
	if bottom > 110 {
		t.Errorf("bottom band mean brightness %.1f, want darkened below 110", bottom)
	}
	if peak < 220 {
		t.Errorf("bottom band brightest pixel %d, want white text (>= 220)", peak)
	}

	// The record id is part of the band: another record renders differently
	// there, and identically above it.
	other := sampleWatermark()
	other.RecordID = "R20261120-0043"
	disp2, _, err := media.RenderDisplay(src, other)
	if err != nil {
		t.Fatal(err)
	}
	img2 := decodeJPEG(t, disp2)
	if rowsDiffer(t, img, img2, 0, h/2) {
		t.Error("changing the record id changed the top half of the photo")
	}
	if !rowsDiffer(t, img, img2, h-h/5, h) {
		t.Error("changing the record id did not change the watermark band")
	}

	// No band on the thumbnail: it stays the plain photo.
	tm := decodeJPEG(t, thumb)
	if mean, _ := luma(t, tm, tm.Bounds().Dy()-10, tm.Bounds().Dy()); mean < 124 {
		t.Errorf("thumbnail bottom brightness %.1f, want the plain 128", mean)
	}
}

func rowsDiffer(t *testing.T, a, b image.Image, y0, y1 int) bool {
	t.Helper()
	pa, pb := lumaPlane(t, a), lumaPlane(t, b)
	return !bytes.Equal(pa.Y[y0*pa.YStride:y1*pa.YStride], pb.Y[y0*pb.YStride:y1*pb.YStride])
}

func TestRenderDisplayKeepsTextInsidePhoto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		w, h int
		wm   media.Watermark
	}{
		{"long place name is cut, not run off the edge", 800, 600, media.Watermark{
			Time:  time.Date(2026, 11, 20, 2, 30, 5, 0, time.UTC),
			Place: "29.5300N 108.7700E Chengxi Subdistrict, Qianjiang District, Chongqing, beside the old bridge",
		}},
		{"chinese place falls back to placeholders", 800, 600, media.Watermark{Place: "黔江区城西街道 29.53N", RecordID: "7"}},
		{"wide panorama keeps the band small", 1600, 120, sampleWatermark()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			disp, _, err := media.RenderDisplay(uniformImage(tt.w, tt.h, gray), tt.wm)
			if err != nil {
				t.Fatal(err)
			}
			img := decodeJPEG(t, disp)
			b := img.Bounds()
			// The rightmost columns are the band's padding: no text there.
			p := lumaPlane(t, img)
			for y := range b.Dy() {
				for x := b.Dx() - 3; x < b.Dx(); x++ {
					if l := p.Y[y*p.YStride+x]; l > 200 {
						t.Fatalf("text reaches the right edge at (%d,%d)", x, y)
					}
				}
			}
			// At most 40 % of the photo is covered by the band.
			if mean, _ := luma(t, img, 0, b.Dy()*55/100); mean < 124 {
				t.Errorf("upper 55%% mean brightness %.1f: band covers too much", mean)
			}
		})
	}
}

func TestRenderDisplayFlattensTransparencyOntoWhite(t *testing.T) {
	t.Parallel()
	clear := image.NewNRGBA(image.Rect(0, 0, 100, 100)) // fully transparent
	disp, _, err := media.RenderDisplay(clear, media.Watermark{})
	if err != nil {
		t.Fatal(err)
	}
	if mean, _ := luma(t, decodeJPEG(t, disp), 0, 100); mean < 250 {
		t.Errorf("transparent PNG rendered with brightness %.1f, want white", mean)
	}
}

func TestRenderDisplayRejectsEmptyImage(t *testing.T) {
	t.Parallel()
	for _, img := range []image.Image{nil, image.NewRGBA(image.Rect(0, 0, 0, 0))} {
		if _, _, err := media.RenderDisplay(img, sampleWatermark()); err == nil {
			t.Errorf("RenderDisplay(%T) succeeded, want an error", img)
		}
	}
}
