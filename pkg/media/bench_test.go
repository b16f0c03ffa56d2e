package media_test

import (
	"bytes"
	"image"
	"math/rand/v2"
	"testing"
	"time"

	"qjmz/pkg/media"
)

// photoLike is a 12 MP image with gradients and noise, so the JPEG encoder
// and decoder do the work a real photo costs rather than a flat fill's.
func photoLike(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			n := uint8(rng.IntN(32))
			row[4*x] = uint8(x*255/w) + n
			row[4*x+1] = uint8(y*255/h) + n
			row[4*x+2] = uint8((x+y)*127/(w+h)) + n
			row[4*x+3] = 255
		}
	}
	return img
}

// BenchmarkInspectAndRender12MP is the server's cost per uploaded photo:
// header checks, full decode, hashing, EXIF, and both derived JPEGs.
func BenchmarkInspectAndRender12MP(b *testing.B) {
	jpg := withEXIF(b, encodeJPEG(b, photoLike(4000, 3000)), buildEXIF(b, exifSpec{
		dateTime: "2026:11:20 10:30:00", offset: "+08:00",
		latRef: "N", lat: dms(29, 31, 4800), lngRef: "E", lng: dms(108, 46, 1200),
	}))
	wm := media.Watermark{Time: time.Date(2026, 11, 20, 2, 30, 5, 0, time.UTC), Place: "29.5300N 108.7700E", RecordID: "R20261120-0042"}
	b.SetBytes(int64(len(jpg)))
	b.ReportAllocs()
	for b.Loop() {
		_, img, err := media.InspectImage(bytes.NewReader(jpg), "image/jpeg", media.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := media.RenderDisplay(img, wm); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectBomb shows a decompression bomb costs almost nothing.
func BenchmarkRejectBomb(b *testing.B) {
	bomb := bombPNG(b, 50000, 50000)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := media.InspectImage(bytes.NewReader(bomb), "image/png", media.DefaultLimits()); err == nil {
			b.Fatal("bomb accepted")
		}
	}
}
