package main

// Evidence fixtures for the upload tests, generated in code so every byte
// the tests send is visible here (adapted from pkg/media/fixtures_test.go).

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
	"time"

	mp4 "github.com/abema/go-mp4"
	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
)

// uplScene is a bright w×h picture that differs per seed in layout, so two
// seeds are different photos to both the exact and the perceptual hash.
func uplScene(w, h int, seed uint32) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	x := seed*2654435761 + 1
	next := func() uint32 { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x }
	bands := 3 + int(next()%5)
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			band := (px*bands/w + py*bands/h + int(seed)) % bands
			c := color.RGBA{uint8(150 + band*20%100), uint8(170 + (band*37)%80), uint8(160 + (band*53)%90), 255}
			i := img.PixOffset(px, py)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
	}
	// A few seed-placed dark blocks give the DCT something to see.
	for k := 0; k < 6; k++ {
		bx, by := int(next()%uint32(w*3/4)), int(next()%uint32(h*3/4))
		for py := by; py < by+h/6 && py < h; py++ {
			for px := bx; px < bx+w/6 && px < w; px++ {
				i := img.PixOffset(px, py)
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = 40, 60, 90
			}
		}
	}
	return img
}

func uplJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatalf("encode jpeg: %v", err)
	}
	return buf.Bytes()
}

func uplPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode png: %v", err)
	}
	return buf.Bytes()
}

// uplPhoto is a phone-like JPEG: capture time 2026-03-18 09:30:00 +08:00 and
// GPS 29°31'48"N 108°46'12"E (29.53, 108.77, the district centre).
func uplPhoto(t testing.TB, seed uint32) []byte {
	t.Helper()
	jpg := uplJPEG(t, uplScene(640, 480, seed))
	return uplWithEXIF(t, jpg, uplEXIF(t, "2026:03:18 09:30:00", "+08:00", uplDMS(29, 31, 4800), uplDMS(108, 46, 1200)))
}

func uplDMS(d, m, s100 uint32) []exifcommon.Rational {
	return []exifcommon.Rational{{Numerator: d, Denominator: 1}, {Numerator: m, Denominator: 1}, {Numerator: s100, Denominator: 100}}
}

// uplEXIF encodes a TIFF-structured EXIF block with capture time and GPS.
func uplEXIF(t testing.TB, dateTime, offset string, lat, lng []exifcommon.Rational) []byte {
	t.Helper()
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		t.Fatal(err)
	}
	root := exif.NewIfdBuilder(im, exif.NewTagIndex(), exifcommon.IfdStandardIfdIdentity, exifcommon.EncodeDefaultByteOrder)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("build exif: %v", err)
		}
	}
	must(root.AddStandardWithName("Software", "qjmz-test"))
	ib, err := exif.GetOrCreateIbFromRootIb(root, "IFD/Exif")
	must(err)
	must(ib.AddStandardWithName("DateTimeOriginal", dateTime))
	must(ib.AddStandardWithName("OffsetTimeOriginal", offset))
	gps, err := exif.GetOrCreateIbFromRootIb(root, "IFD/GPSInfo")
	must(err)
	must(gps.AddStandardWithName("GPSVersionID", []byte{2, 2, 0, 0}))
	must(gps.AddStandardWithName("GPSLatitudeRef", "N"))
	must(gps.AddStandardWithName("GPSLatitude", lat))
	must(gps.AddStandardWithName("GPSLongitudeRef", "E"))
	must(gps.AddStandardWithName("GPSLongitude", lng))
	data, err := exif.NewIfdByteEncoder().EncodeToExif(root)
	must(err)
	return data
}

// uplWithEXIF inserts an APP1 "Exif" segment right after the JPEG's SOI.
func uplWithEXIF(t testing.TB, jpg, tiff []byte) []byte {
	t.Helper()
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func uplPNGChunk(typ string, data []byte) []byte {
	out := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	copy(out[4:], typ)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// uplBombPNG is a PNG of a few dozen bytes whose IHDR claims w×h RGBA
// pixels: decoding it would try to allocate w*h*4 bytes.
func uplBombPNG(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, uplPNGChunk("IHDR", ihdr)...)
	out = append(out, uplPNGChunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00})...)
	return append(out, uplPNGChunk("IEND", nil)...)
}

func uplBox(typ string, parts ...[]byte) []byte {
	size := 8
	for _, p := range parts {
		size += len(p)
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, size), uint32(size))
	out = append(out, typ...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func uplMarshal(t testing.TB, b mp4.IImmutableBox) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := mp4.Marshal(&buf, b, mp4.Context{}); err != nil {
		t.Fatalf("marshal %s: %v", b.GetType(), err)
	}
	return buf.Bytes()
}

// uplMP4 is a minimal MP4 (ftyp, moov with mvhd and a 1280×720 video trak,
// mdat) created at `created` and lasting `seconds`; fill varies the mdat so
// two videos differ.
func uplMP4(t testing.TB, created time.Time, seconds int, fill byte) []byte {
	t.Helper()
	identity := [9]int32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}
	creation := uint32(created.Unix() + 2082844800)
	mvhd := &mp4.Mvhd{Timescale: 1000, Rate: 0x00010000, Volume: 0x0100, Matrix: identity, NextTrackID: 2,
		CreationTimeV0: creation, ModificationTimeV0: creation, DurationV0: uint32(seconds * 1000)}
	tkhd := &mp4.Tkhd{TrackID: 1, Matrix: identity, Width: 1280 << 16, Height: 720 << 16, CreationTimeV0: creation, DurationV0: uint32(seconds * 1000)}
	tkhd.SetFlags(0x000003)
	out := uplBox("ftyp", []byte("isom"), []byte{0, 0, 2, 0}, []byte("isomiso2mp41"))
	out = append(out, uplBox("moov", uplBox("mvhd", uplMarshal(t, mvhd)), uplBox("trak", uplBox("tkhd", uplMarshal(t, tkhd))))...)
	return append(out, uplBox("mdat", bytes.Repeat([]byte{fill}, 4096))...)
}
