package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	exif "github.com/dsoprea/go-exif/v3"
	exifcommon "github.com/dsoprea/go-exif/v3/common"
)

// EXIF tag IDs read here (EXIF 2.32).
const (
	tagOrientation        = 0x0112
	tagDateTimeOriginal   = 0x9003
	tagOffsetTimeOriginal = 0x9011
	tagGPSLatitudeRef     = 0x0001
	tagGPSLatitude        = 0x0002
	tagGPSLongitudeRef    = 0x0003
	tagGPSLongitude       = 0x0004
)

// exifFacts is what the evidence checks need from an EXIF block.
type exifFacts struct {
	orientation int // 1..8; 0 when absent or invalid
	captureTime *time.Time
	offsetKnown bool
	gps         *GPS
}

// findEXIF returns the TIFF-structured EXIF payload of a JPEG (APP1 "Exif")
// or PNG (eXIf chunk), or nil. It walks the container's own segment/chunk
// structure instead of go-exif's byte-pattern search, which scans the whole
// file and can "find" a TIFF header inside compressed pixel data.
func findEXIF(data []byte, format string) []byte {
	switch format {
	case TypeJPEG:
		return findJPEGExif(data)
	case TypePNG:
		return findPNGExif(data)
	}
	return nil
}

func findJPEGExif(data []byte) []byte {
	i := 2 // past SOI
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return nil
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8) { // no length field
			i += 2
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // metadata always precedes the scan
			return nil
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return nil
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

func findPNGExif(data []byte) []byte {
	i := 8 // past the signature
	for i+12 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		end := int64(i) + 12 + n
		if end > int64(len(data)) {
			return nil
		}
		switch typ {
		case "eXIf":
			return data[i+8 : i+8+int(n)]
		case "IEND":
			return nil
		}
		i = int(end)
	}
	return nil
}

// parseEXIF reads orientation, capture time and GPS. go-exif reports most
// failures by panicking internally and recovering with a type assertion that
// itself panics on non-error values, so a hostile block is contained here:
// bad metadata must never take the server down or reject the photo, it only
// means the facts are unknown.
func parseEXIF(raw []byte) (facts exifFacts, err error) {
	defer func() {
		if r := recover(); r != nil {
			facts, err = exifFacts{}, fmt.Errorf("exif: panic while parsing: %v", r)
		}
	}()
	im, err := exifcommon.NewIfdMappingWithStandard()
	if err != nil {
		return facts, fmt.Errorf("exif: ifd mapping: %w", err)
	}
	// A fresh tag index per call: TagIndex lazily loads itself without
	// locking, so sharing one between goroutines would race.
	_, index, err := exif.Collect(im, exif.NewTagIndex(), raw)
	if err != nil {
		return facts, fmt.Errorf("exif: collect: %w", err)
	}
	root := index.RootIfd
	if root == nil {
		return facts, fmt.Errorf("exif: no IFD0")
	}

	if v, ok := firstUint16(root, tagOrientation); ok && v >= 1 && v <= 8 {
		facts.orientation = int(v)
	}
	if exifIfd, err := root.ChildWithIfdPath(exifcommon.IfdExifStandardIfdIdentity); err == nil {
		facts.captureTime, facts.offsetKnown = captureTime(
			asciiTag(exifIfd, tagDateTimeOriginal), asciiTag(exifIfd, tagOffsetTimeOriginal))
	}
	if gpsIfd, err := root.ChildWithIfdPath(exifcommon.IfdGpsInfoStandardIfdIdentity); err == nil {
		facts.gps = gpsFromIfd(gpsIfd)
	}
	return facts, nil
}

// captureTime combines DateTimeOriginal with OffsetTimeOriginal. Without an
// offset the wall-clock time is read as China Standard Time: the service only
// runs in Qianjiang, where phones are set to UTC+8, and offsetKnown=false
// lets the risk checks treat the result as less certain.
func captureTime(dt, offset string) (*time.Time, bool) {
	if dt == "" || strings.HasPrefix(dt, "0000") {
		return nil, false
	}
	loc, known := time.FixedZone("CST", 8*3600), false
	if o, err := parseOffset(offset); err == nil {
		loc, known = o, true
	}
	t, err := time.ParseInLocation("2006:01:02 15:04:05", dt, loc)
	if err != nil {
		return nil, false
	}
	return &t, known
}

func parseOffset(s string) (*time.Location, error) {
	for _, layout := range []string{"-07:00", "-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			_, off := t.Zone()
			return time.FixedZone("", off), nil
		}
	}
	return nil, fmt.Errorf("exif: bad offset %q", s)
}

func gpsFromIfd(ifd *exif.Ifd) *GPS {
	lat, ok1 := degrees(ifd, tagGPSLatitude, asciiTag(ifd, tagGPSLatitudeRef), 'S')
	lng, ok2 := degrees(ifd, tagGPSLongitude, asciiTag(ifd, tagGPSLongitudeRef), 'W')
	if !ok1 || !ok2 || math.Abs(lat) > 90 || math.Abs(lng) > 180 {
		return nil
	}
	// Some phones write 0/0 when they had no fix; nobody in this service
	// works at Null Island, so it means "no GPS".
	if lat == 0 && lng == 0 {
		return nil
	}
	return &GPS{Lat: lat, Lng: lng}
}

// degrees converts a degrees/minutes/seconds triple of rationals. go-exif's
// own helper divides by zero denominators and indexes an empty ref string.
func degrees(ifd *exif.Ifd, tag uint16, ref string, negative byte) (float64, bool) {
	entries, err := ifd.FindTagWithId(tag)
	if err != nil || len(entries) == 0 {
		return 0, false
	}
	v, err := entries[0].Value()
	if err != nil {
		return 0, false
	}
	rs, ok := v.([]exifcommon.Rational)
	if !ok || len(rs) != 3 {
		return 0, false
	}
	var parts [3]float64
	for i, r := range rs {
		if r.Denominator == 0 {
			return 0, false
		}
		parts[i] = float64(r.Numerator) / float64(r.Denominator)
	}
	d := parts[0] + parts[1]/60 + parts[2]/3600
	if ref != "" && ref[0] == negative {
		d = -d
	}
	return d, true
}

func asciiTag(ifd *exif.Ifd, tag uint16) string {
	entries, err := ifd.FindTagWithId(tag)
	if err != nil || len(entries) == 0 {
		return ""
	}
	v, err := entries[0].Value()
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	return strings.TrimSpace(strings.TrimRight(s, "\x00"))
}

func firstUint16(ifd *exif.Ifd, tag uint16) (uint16, bool) {
	entries, err := ifd.FindTagWithId(tag)
	if err != nil || len(entries) == 0 {
		return 0, false
	}
	v, err := entries[0].Value()
	if err != nil {
		return 0, false
	}
	s, ok := v.([]uint16)
	if !ok || len(s) == 0 {
		return 0, false
	}
	return s[0], true
}
