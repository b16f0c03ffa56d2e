package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"time"

	"github.com/disintegration/imaging"
)

// GPS is a WGS-84 position in decimal degrees, south and west negative.
type GPS struct {
	Lat, Lng float64
}

// ImageInfo describes an uploaded photo as the server found it.
type ImageInfo struct {
	SHA256      string // hex, of the bytes as uploaded
	Format      string // "jpeg" or "png"
	ContentType string // sniffed, never the declared one
	// Width and Height are as displayed, i.e. after the EXIF orientation is
	// applied (a portrait phone photo is taller than wide).
	Width, Height int
	Size          int64

	// HasEXIF is true when an EXIF block was present and readable; a block
	// too damaged to parse counts as absent.
	HasEXIF bool
	// CaptureTime is DateTimeOriginal, in the zone given by
	// OffsetTimeOriginal when present (CaptureOffsetKnown) and in UTC+8
	// otherwise; nil when the photo carries no capture time.
	CaptureTime        *time.Time
	CaptureOffsetKnown bool
	GPS                *GPS
	// Orientation is the EXIF orientation (1–8) that was applied to the
	// returned image; 1 when absent.
	Orientation int
}

// InspectImage reads at most lim.MaxImageBytes+1 bytes of a JPEG or PNG,
// verifies it, and returns its facts and the decoded image with the EXIF
// orientation applied. Checks run cheapest first, so a hostile file is
// rejected before it costs memory: size, magic bytes against the declared
// type, pixel count from the header, and only then the full decode.
func InspectImage(r io.Reader, declaredType string, lim Limits) (ImageInfo, image.Image, error) {
	var info ImageInfo
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, lim.MaxImageBytes+1))
	if err != nil {
		return info, nil, fmt.Errorf("media: read image: %w", err)
	}
	if n > lim.MaxImageBytes {
		return info, nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxImageBytes)
	}
	data := buf.Bytes()
	if len(data) == 0 {
		return info, nil, fmt.Errorf("%w: empty file", ErrCorrupt)
	}

	ct := sniffImage(data)
	if ct == "" {
		return info, nil, fmt.Errorf("%w: not JPEG or PNG (declared %q)", ErrUnsupportedType, declaredType)
	}
	if err := checkDeclared(declaredType, ct, sameImageType); err != nil {
		return info, nil, err
	}

	// Decoders are called directly rather than through image.Decode so the
	// result does not depend on which formats some other package registered.
	decodeConfig, decode, format := jpeg.DecodeConfig, jpeg.Decode, "jpeg"
	if ct == TypePNG {
		decodeConfig, decode, format = png.DecodeConfig, png.Decode, "png"
	}
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return info, nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return info, nil, fmt.Errorf("%w: %dx%d image", ErrCorrupt, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return info, nil, fmt.Errorf("%w: %dx%d = %d pixels, limit %d",
			ErrTooManyPixels, cfg.Width, cfg.Height, px, lim.MaxPixels)
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return info, nil, fmt.Errorf("%w: decode: %w", ErrCorrupt, err)
	}

	sum := sha256.Sum256(data)
	info = ImageInfo{
		SHA256:      hex.EncodeToString(sum[:]),
		Format:      format,
		ContentType: ct,
		Size:        int64(len(data)),
		Orientation: 1,
	}
	if raw := findEXIF(data, ct); raw != nil {
		if facts, err := parseEXIF(raw); err == nil {
			info.HasEXIF = true
			info.CaptureTime, info.CaptureOffsetKnown = facts.captureTime, facts.offsetKnown
			info.GPS = facts.gps
			if facts.orientation != 0 {
				info.Orientation = facts.orientation
			}
		}
	}
	img = applyOrientation(img, info.Orientation)
	b := img.Bounds()
	info.Width, info.Height = b.Dx(), b.Dy()
	return info, img, nil
}

// applyOrientation turns the stored pixels the way the camera meant them to
// be seen. Most portrait phone photos are stored sideways (orientation 6),
// so the common YCbCr case is turned plane by plane; otherwise imaging does
// it (EXIF rotations are clockwise, imaging's counter-clockwise).
func applyOrientation(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	if ycc, ok := img.(*image.YCbCr); ok {
		if turned, ok := orientYCbCr(ycc, o); ok {
			return turned
		}
	}
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}
