// Package media inspects uploaded evidence — JPEG/PNG photos and MP4/QuickTime
// videos — without trusting anything the client said about it, and renders the
// watermarked display copy and thumbnail shown in the mini-program.
//
// Uploads come straight from phones and cannot be trusted: the declared
// content type may lie, the file may be truncated, and a few hundred bytes of
// PNG can claim to be 50000×50000 pixels. Every check that can be made from
// the header (size, magic bytes, pixel count) is made before anything is
// decoded, and each kind of bad input maps to its own sentinel error so the
// API layer can tell the uploader exactly what was wrong.
package media

import "errors"

// Sentinel errors. Callers match them with errors.Is; the wrapped message
// carries the detail for logs and must not be shown to clients.
var (
	// ErrTooLarge means the file has more bytes than the limit allows.
	ErrTooLarge = errors.New("media: file too large")
	// ErrTooManyPixels means the header announces more pixels than the limit
	// allows (a decompression bomb, or simply a huge panorama); it is
	// detected before the image is decoded.
	ErrTooManyPixels = errors.New("media: image has too many pixels")
	// ErrTooLong means a video's duration is over the limit.
	ErrTooLong = errors.New("media: video too long")
	// ErrUnsupportedType means the magic bytes are not JPEG/PNG (images) or
	// MP4/QuickTime (video).
	ErrUnsupportedType = errors.New("media: unsupported file type")
	// ErrTypeMismatch means the bytes are a supported type but not the one
	// the client declared.
	ErrTypeMismatch = errors.New("media: content does not match declared type")
	// ErrCorrupt means the file is truncated or cannot be decoded.
	ErrCorrupt = errors.New("media: file is corrupt or truncated")
)

// Content types produced by sniffing.
const (
	TypeJPEG      = "image/jpeg"
	TypePNG       = "image/png"
	TypeMP4       = "video/mp4"
	TypeQuickTime = "video/quicktime"
)

// Limits bounds what an upload may cost the server. Zero fields are not
// "unlimited": use DefaultLimits and override what you need.
type Limits struct {
	MaxImageBytes   int64
	MaxPixels       int64
	MaxVideoBytes   int64
	MaxVideoSeconds int
}

// DefaultLimits fits phone photos and short service videos. 40 MP leaves room
// for the 48/50 MP sensors of current phones in binned mode while keeping a
// decode under ~160 MB of RGBA in the worst case.
func DefaultLimits() Limits {
	return Limits{
		MaxImageBytes:   20 << 20,
		MaxPixels:       40_000_000,
		MaxVideoBytes:   200 << 20,
		MaxVideoSeconds: 600,
	}
}
