package media_test

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

// Fixtures are generated here so every byte a test feeds the package is
// visible in the repository.

// patternImage is a w×h image with a left half in `left` and a right half
// in `right`, so orientation and scaling mistakes are visible in pixels.
func patternImage(w, h int, left, right color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		c := right
		if (i/4)%w < w/2 {
			c = left
		}
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func uniformImage(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatalf("encode jpeg: %v", err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode png: %v", err)
	}
	return buf.Bytes()
}

// exifSpec describes the EXIF block a fixture carries; zero fields are left out.
type exifSpec struct {
	orientation    uint16
	dateTime       string // "2006:01:02 15:04:05"
	offset         string // "+08:00"
	latRef, lngRef string
	lat, lng       []exifcommon.Rational // degrees, minutes, seconds
	withGPSVersion bool
	rawReplacement []byte // when set, used verbatim instead of building a block
}

// buildEXIF encodes spec as a TIFF-structured EXIF block with go-exif.
func buildEXIF(t testing.TB, spec exifSpec) []byte {
	t.Helper()
	if spec.rawReplacement != nil {
		return spec.rawReplacement
	}
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		t.Fatal(err)
	}
	ti := exif.NewTagIndex()
	root := exif.NewIfdBuilder(im, ti, exifcommon.IfdStandardIfdIdentity, exifcommon.EncodeDefaultByteOrder)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("build exif: %v", err)
		}
	}
	must(root.AddStandardWithName("Software", "qjmz-test"))
	if spec.orientation != 0 {
		must(root.AddStandardWithName("Orientation", []uint16{spec.orientation}))
	}
	if spec.dateTime != "" {
		ib, err := exif.GetOrCreateIbFromRootIb(root, "IFD/Exif")
		must(err)
		must(ib.AddStandardWithName("DateTimeOriginal", spec.dateTime))
		if spec.offset != "" {
			must(ib.AddStandardWithName("OffsetTimeOriginal", spec.offset))
		}
	}
	if spec.lat != nil {
		ib, err := exif.GetOrCreateIbFromRootIb(root, "IFD/GPSInfo")
		must(err)
		if spec.withGPSVersion {
			must(ib.AddStandardWithName("GPSVersionID", []byte{2, 2, 0, 0}))
		}
		must(ib.AddStandardWithName("GPSLatitudeRef", spec.latRef))
		must(ib.AddStandardWithName("GPSLatitude", spec.lat))
		must(ib.AddStandardWithName("GPSLongitudeRef", spec.lngRef))
		must(ib.AddStandardWithName("GPSLongitude", spec.lng))
	}
	data, err := exif.NewIfdByteEncoder().EncodeToExif(root)
	must(err)
	return data
}

// withEXIF inserts an APP1 "Exif" segment right after the JPEG's SOI marker,
// where cameras put it.
func withEXIF(t testing.TB, jpg, tiff []byte) []byte {
	t.Helper()
	payload := append([]byte("Exif\x00\x00"), tiff...)
	if len(payload)+2 > 0xFFFF {
		t.Fatalf("exif block too big for one APP1 segment")
	}
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// dms is a degrees/minutes/seconds triple of exact rationals.
func dms(d, m, s100 uint32) []exifcommon.Rational {
	return []exifcommon.Rational{{Numerator: d, Denominator: 1}, {Numerator: m, Denominator: 1}, {Numerator: s100, Denominator: 100}}
}

// pngChunk builds one PNG chunk with a correct CRC.
func pngChunk(typ string, data []byte) []byte {
	out := make([]byte, 8, 12+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	copy(out[4:], typ)
	out = append(out, data...)
	crc := crc32.ChecksumIEEE(append([]byte(typ), data...))
	return binary.BigEndian.AppendUint32(out, crc)
}

// bombPNG is a PNG of a few hundred bytes whose IHDR claims w×h pixels of
// 8-bit RGBA: decoding it would try to allocate w*h*4 bytes.
func bombPNG(t testing.TB, w, h uint32) []byte {
	t.Helper()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // bit depth 8, colour type RGBA
	// A real zlib stream of zeros, as an encoder would start a blank image.
	idat := []byte{0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0x00, 0x00}
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, pngChunk("IHDR", ihdr)...)
	out = append(out, pngChunk("IDAT", idat)...)
	return append(out, pngChunk("IEND", nil)...)
}

// pngWithEXIF adds an eXIf chunk after IHDR.
func pngWithEXIF(t testing.TB, pngData, tiff []byte) []byte {
	t.Helper()
	const ihdrEnd = 8 + 12 + 13
	out := append([]byte{}, pngData[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", tiff)...)
	return append(out, pngData[ihdrEnd:]...)
}

// mp4Spec describes a minimal ISO BMFF file: ftyp, moov (mvhd, one video
// trak with tkhd, optional mvex) and an mdat.
type mp4Spec struct {
	brand      string
	version1   bool
	creation   uint64 // seconds since 1904
	timescale  uint32
	duration   uint64
	width      uint32
	height     uint32
	rotate90   bool
	fragmented bool
	mdatBytes  int
	noMoov     bool
}

func since1904(t time.Time) uint64 {
	return uint64(t.Unix() + 2082844800)
}

func mp4Box(typ string, parts ...[]byte) []byte {
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

// marshalPayload encodes a box body with go-mp4's own marshaller, so the
// fixtures have exactly the layout go-mp4 expects to read.
func marshalPayload(t testing.TB, b mp4.IImmutableBox) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := mp4.Marshal(&buf, b, mp4.Context{}); err != nil {
		t.Fatalf("marshal %s: %v", b.GetType(), err)
	}
	return buf.Bytes()
}

func buildMP4(t testing.TB, s mp4Spec) []byte {
	t.Helper()
	brand := s.brand
	if brand == "" {
		brand = "isom"
	}
	ftyp := mp4Box("ftyp", []byte(brand), []byte{0, 0, 2, 0}, []byte("isomiso2mp41"))

	identity := [9]int32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}
	mvhd := &mp4.Mvhd{Timescale: s.timescale, Rate: 0x00010000, Volume: 0x0100, Matrix: identity, NextTrackID: 2}
	tkhd := &mp4.Tkhd{TrackID: 1, Matrix: identity, Width: s.width << 16, Height: s.height << 16}
	tkhd.SetFlags(0x000003)
	if s.version1 {
		mvhd.SetVersion(1)
		mvhd.CreationTimeV1, mvhd.ModificationTimeV1, mvhd.DurationV1 = s.creation, s.creation, s.duration
		tkhd.SetVersion(1)
		tkhd.CreationTimeV1, tkhd.DurationV1 = s.creation, s.duration
	} else {
		mvhd.CreationTimeV0, mvhd.ModificationTimeV0, mvhd.DurationV0 = uint32(s.creation), uint32(s.creation), uint32(s.duration)
		tkhd.CreationTimeV0, tkhd.DurationV0 = uint32(s.creation), uint32(s.duration)
	}
	if s.rotate90 {
		tkhd.Matrix = [9]int32{0, 0x00010000, 0, -0x00010000, 0, 0, 0, 0, 0x40000000}
	}
	audio := &mp4.Tkhd{TrackID: 2, Volume: 0x0100, Matrix: identity}

	moovParts := [][]byte{
		mp4Box("mvhd", marshalPayload(t, mvhd)),
		mp4Box("trak", mp4Box("tkhd", marshalPayload(t, audio))),
		mp4Box("trak", mp4Box("tkhd", marshalPayload(t, tkhd))),
	}
	if s.fragmented {
		moovParts = append(moovParts, mp4Box("mvex", mp4Box("trex", make([]byte, 24))))
	}
	out := append([]byte{}, ftyp...)
	if !s.noMoov {
		out = append(out, mp4Box("moov", moovParts...)...)
	}
	return append(out, mp4Box("mdat", bytes.Repeat([]byte{0xAB}, s.mdatBytes))...)
}
