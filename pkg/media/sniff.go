package media

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// sniffImage names the image format from its magic bytes; "" when it is
// neither JPEG nor PNG.
func sniffImage(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return TypeJPEG
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return TypePNG
	}
	return ""
}

// sniffVideo names an ISO base media file from its ftyp box; "" for anything
// else. HEIF/AVIF photos share the container, so their brands are refused
// here rather than failing later with a confusing "no moov" error.
func sniffVideo(head []byte) string {
	if len(head) < 12 || string(head[4:8]) != "ftyp" {
		return ""
	}
	switch brand := string(head[8:12]); brand {
	case "qt  ":
		return TypeQuickTime
	case "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis":
		return ""
	default:
		return TypeMP4
	}
}

// normalizeDeclared reduces a client's Content-Type to a bare lowercase media
// type and folds common aliases. It returns "" when the client declared
// nothing useful, in which case the sniffed type alone decides: WeChat's
// upload paths often label everything application/octet-stream.
func normalizeDeclared(declared string) string {
	declared = strings.TrimSpace(declared)
	if declared == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(declared)
	if err != nil {
		// A malformed header still says something; compare its bare part.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(declared, ";", 2)[0]))
	}
	switch mt {
	case "application/octet-stream", "binary/octet-stream":
		return ""
	case "image/jpg", "image/pjpeg":
		return TypeJPEG
	case "image/x-png":
		return TypePNG
	case "video/x-m4v", "video/m4v":
		return TypeMP4
	case "video/x-quicktime", "video/mov":
		return TypeQuickTime
	}
	return mt
}

// checkDeclared compares what the client said with what the bytes are.
// same reports whether two types count as the same declaration.
func checkDeclared(declared, sniffed string, same func(a, b string) bool) error {
	d := normalizeDeclared(declared)
	if d == "" || same(d, sniffed) {
		return nil
	}
	return fmt.Errorf("%w: declared %q, content is %s", ErrTypeMismatch, declared, sniffed)
}

func sameImageType(a, b string) bool { return a == b }

// sameVideoType treats MP4 and QuickTime as one family: phones and WeChat
// label .mov and .mp4 inconsistently, and both are parsed the same way.
func sameVideoType(a, b string) bool {
	isVideo := func(t string) bool { return t == TypeMP4 || t == TypeQuickTime }
	return isVideo(a) && isVideo(b)
}
