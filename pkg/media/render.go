package media

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"strings"
	"time"

	"github.com/disintegration/imaging"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Output geometry and quality of the derived copies.
const (
	DisplayMaxEdge = 1600
	ThumbMaxEdge   = 320

	displayQuality = 85
	thumbQuality   = 80

	// The band is dark enough for white text to read over snow or sky, and
	// light enough that the evidence underneath stays visible.
	bandAlpha = 150
	// Text height is the display width divided by this: about 10 pt on a
	// phone showing the photo full-width, for landscape and portrait alike.
	widthPerFontPx = 36
	minFontPx      = 9
	maxFontPx      = 48
	// The band may cover at most this fraction of the height, so a wide
	// panorama does not become all watermark.
	maxBandFraction = 0.4
)

// Watermark is burned into the display copy so a screenshot still says when
// and where the server received the evidence and which record it belongs to.
type Watermark struct {
	// Time is when the server received the upload, shown in China Standard
	// Time as "2006-01-02 15:04:05 +08:00"; the zero time is left out.
	Time time.Time
	// Place is shown as given, e.g. "29.5300N 108.7700E". Use ASCII: other
	// characters are drawn as '?' (see drawWatermark).
	Place    string
	RecordID string
}

// lines returns the non-empty watermark lines, top to bottom.
func (wm Watermark) lines() []string {
	var out []string
	if !wm.Time.IsZero() {
		out = append(out, wm.Time.In(chinaZone()).Format("2006-01-02 15:04:05 -07:00"))
	}
	if p := strings.TrimSpace(wm.Place); p != "" {
		out = append(out, p)
	}
	if id := strings.TrimSpace(wm.RecordID); id != "" {
		out = append(out, "Record "+id)
	}
	return out
}

// chinaZone is Asia/Shanghai without depending on the host's tz database,
// which slim containers lack; China has had no DST since 1991.
func chinaZone() *time.Location { return time.FixedZone("CST", 8*3600) }

// RenderDisplay makes the two JPEGs shown to users: a display copy at most
// DisplayMaxEdge pixels on its long edge with wm burned into a semi-opaque
// band along the bottom, and a thumbnail at most ThumbMaxEdge pixels. Neither
// is enlarged. Transparent areas become white. The thumbnail carries no
// band: at 320 px the text would be an unreadable smear over the photo, and
// thumbnails only ever link to the watermarked copy.
func RenderDisplay(img image.Image, wm Watermark) (display []byte, thumb []byte, err error) {
	if img == nil || img.Bounds().Empty() {
		return nil, nil, fmt.Errorf("media: render: empty image")
	}
	canvas := fitOpaque(img, DisplayMaxEdge)
	small := fitOpaque(canvas, ThumbMaxEdge)
	if err := drawWatermark(canvas, wm.lines()); err != nil {
		return nil, nil, err
	}
	if display, err = encodeJPEG(canvas, displayQuality); err != nil {
		return nil, nil, err
	}
	if thumb, err = encodeJPEG(small, thumbQuality); err != nil {
		return nil, nil, err
	}
	return display, thumb, nil
}

// fitOpaque scales img down to fit maxEdge and flattens it onto white. The
// result is *image.RGBA because image/jpeg encodes that type on a fast path
// and every other type pixel by pixel through interfaces.
func fitOpaque(img image.Image, maxEdge int) *image.RGBA {
	b := img.Bounds()
	src := img
	// A cheap integer box shrink on the YCbCr planes first leaves the
	// filter below a quarter of the pixels of a 12 MP photo to work on.
	if ycc, ok := img.(*image.YCbCr); ok {
		if k := max(b.Dx(), b.Dy()) / maxEdge; k >= 2 {
			if small, ok := shrinkYCbCr(ycc, k); ok {
				src = small
			}
		}
	}
	if sb := src.Bounds(); sb.Dx() > maxEdge || sb.Dy() > maxEdge {
		// Linear over the full source footprint averages every covered pixel
		// (no aliasing from a 4000→1600 reduction) at a fraction of
		// Lanczos's cost; the difference is invisible at display size.
		src = imaging.Fit(src, maxEdge, maxEdge, imaging.Linear)
	}
	sb := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, sb.Dx(), sb.Dy()))
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, sb.Min, draw.Over)
	return dst
}

// drawWatermark darkens a band at the bottom of dst and writes lines on it.
//
// The text is ASCII in Go Bold (golang.org/x/image/font/gofont): a vector
// font embedded in the binary, so it scales to any photo size and looks the
// same on every server. basicfont's 7×13 bitmap would be illegible on a
// 1600 px photo viewed on a phone, and a CJK font would add ~10 MB to the
// binary for text (dates, coordinates, record ids) that needs none.
func drawWatermark(dst *image.RGBA, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	w, h := dst.Bounds().Dx(), dst.Bounds().Dy()
	fontPx := min(max(w/widthPerFontPx, minFontPx), maxFontPx)
	// Shrink the text rather than let the band swallow a wide, short photo.
	if limit := int(float64(h) * maxBandFraction); bandHeight(fontPx, len(lines)) > limit {
		fontPx = max(limit*10/(13*len(lines)+10), 1)
	}
	bandH := min(bandHeight(fontPx, len(lines)), h)
	band := image.Rect(0, h-bandH, w, h)
	draw.Draw(dst, band, image.NewUniform(color.RGBA{A: bandAlpha}), image.Point{}, draw.Over)

	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return fmt.Errorf("media: parse watermark font: %w", err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: float64(fontPx), DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return fmt.Errorf("media: watermark font face: %w", err)
	}
	defer face.Close()

	pad := fontPx / 2
	lineH := fontPx * 13 / 10
	d := font.Drawer{Dst: dst, Src: image.White, Face: face}
	ascent := face.Metrics().Ascent
	for i, line := range lines {
		text := fitText(face, asciiOnly(line), fixed.I(w-2*pad))
		top := h - bandH + pad + i*lineH
		d.Dot = fixed.Point26_6{X: fixed.I(pad), Y: fixed.I(top) + ascent}
		d.DrawString(text)
	}
	return nil
}

// bandHeight is the band's height for n lines of fontPx text: 1.3 line
// spacing plus half a line of padding above and below.
func bandHeight(fontPx, n int) int { return n*fontPx*13/10 + fontPx }

// asciiOnly keeps the watermark honest: the Go fonts have no CJK glyphs and
// would draw an empty box, so anything outside printable ASCII shows as '?'
// and the reader can at least see that something was there.
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7E {
			return '?'
		}
		return r
	}, s)
}

// fitText cuts s to fit width, marking the cut with "...", so a long place
// name never runs off the edge of the photo.
func fitText(face font.Face, s string, width fixed.Int26_6) string {
	if font.MeasureString(face, s) <= width {
		return s
	}
	for n := len(s) - 1; n > 0; n-- {
		if t := s[:n] + "..."; font.MeasureString(face, t) <= width {
			return t
		}
	}
	return ""
}

func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("media: encode jpeg: %w", err)
	}
	return buf.Bytes(), nil
}
