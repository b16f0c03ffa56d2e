package media

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/imaging"
)

var ratios = []image.YCbCrSubsampleRatio{
	image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
	image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
}

func randomYCbCr(w, h int, r image.YCbCrSubsampleRatio, seed uint64) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), r)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, p := range [][]byte{img.Y, img.Cb, img.Cr} {
		for i := range p {
			p[i] = uint8(rng.IntN(256))
		}
	}
	return img
}

// closeColors allows the rounding differences between two correct
// YCbCr→RGB conversions.
func closeColors(a, b color.Color, tol int) bool {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := func(x, y uint32) bool { return abs(int(x>>8)-int(y>>8)) <= tol }
	return d(ar, br) && d(ag, bg) && d(ab, bb)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// The plane-by-plane turn must show exactly what the generic rotation shows,
// for every orientation and every chroma layout, including the sizes it
// hands back to the generic path.
func TestApplyOrientationMatchesGenericPath(t *testing.T) {
	t.Parallel()
	generic := map[int]func(image.Image) *image.NRGBA{
		2: imaging.FlipH, 3: imaging.Rotate180, 4: imaging.FlipV, 5: imaging.Transpose,
		6: imaging.Rotate270, 7: imaging.Transverse, 8: imaging.Rotate90,
	}
	for _, size := range []image.Point{{16, 8}, {7, 5}} {
		for _, r := range ratios {
			for o := 2; o <= 8; o++ {
				t.Run(fmt.Sprintf("%v/%v/%d", size, r, o), func(t *testing.T) {
					src := randomYCbCr(size.X, size.Y, r, uint64(o))
					got := applyOrientation(src, o)
					want := generic[o](src)
					if got.Bounds().Size() != want.Bounds().Size() {
						t.Fatalf("size %v, want %v", got.Bounds().Size(), want.Bounds().Size())
					}
					gb := got.Bounds()
					for y := range gb.Dy() {
						for x := range gb.Dx() {
							if g, w := got.At(gb.Min.X+x, gb.Min.Y+y), want.At(x, y); !closeColors(g, w, 2) {
								t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
							}
						}
					}
				})
			}
		}
	}
}

func TestShrinkYCbCrAveragesBlocks(t *testing.T) {
	t.Parallel()
	for _, r := range ratios {
		for _, k := range []int{2, 3} {
			t.Run(fmt.Sprintf("%v/k=%d", r, k), func(t *testing.T) {
				src := randomYCbCr(17, 11, r, uint64(k))
				got, ok := shrinkYCbCr(src, k)
				if !ok {
					t.Fatal("not handled")
				}
				if want := image.Pt((17+k-1)/k, (11+k-1)/k); got.Bounds().Size() != want {
					t.Fatalf("size %v, want %v", got.Bounds().Size(), want)
				}
				// Reference: average the source's own Y, Cb, Cr per pixel.
				for dy := range got.Rect.Dy() {
					for dx := range got.Rect.Dx() {
						var sy, scb, scr, n int
						for y := dy * k; y < min(dy*k+k, 11); y++ {
							for x := dx * k; x < min(dx*k+k, 17); x++ {
								c := src.YCbCrAt(x, y)
								sy, scb, scr, n = sy+int(c.Y), scb+int(c.Cb), scr+int(c.Cr), n+1
							}
						}
						c := got.YCbCrAt(dx, dy)
						if abs(int(c.Y)-(sy+n/2)/n) > 0 || abs(int(c.Cb)-(scb+n/2)/n) > 0 || abs(int(c.Cr)-(scr+n/2)/n) > 0 {
							t.Fatalf("block (%d,%d) = %v, want mean of its pixels", dx, dy, c)
						}
					}
				}
			})
		}
	}
}
