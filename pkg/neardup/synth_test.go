package neardup

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/disintegration/imaging"
)

// The quality tests need many distinct photo-like images and no photo
// corpus ships with the repo, so they are synthesised deterministically:
// a lit background (sky and ground, or wall and floor), fractal noise
// texture, soft-edged objects (people, tables, red event banners with
// text-like blocks, windows), a vignette and sensor grain. What matters for
// a perceptual hash is the low-frequency layout, which these vary as much as
// real scenes do; the fine detail they lack is what the hashes throw away.

type rgb struct{ r, g, b float64 }

func (c rgb) scale(f float64) rgb { return rgb{c.r * f, c.g * f, c.b * f} }
func mix(a, b rgb, t float64) rgb {
	return rgb{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t}
}

func randColor(rng *rand.Rand) rgb {
	return rgb{rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
}

// valueNoise is smooth lattice noise: random values on a grid, blended
// with smoothstep, summed over octaves.
type valueNoise struct {
	grid    [][]float64
	cells   int
	octaves int
}

func newValueNoise(rng *rand.Rand, cells, octaves int) valueNoise {
	size := cells<<octaves + 2
	g := make([][]float64, size)
	for i := range g {
		g[i] = make([]float64, size)
		for j := range g[i] {
			g[i][j] = rng.Float64()*2 - 1
		}
	}
	return valueNoise{grid: g, cells: cells, octaves: octaves}
}

// at returns noise in about [-1, 1] for x, y in [0, 1].
func (n valueNoise) at(x, y float64) float64 {
	sum, amp, norm := 0.0, 1.0, 0.0
	freq := float64(n.cells)
	for range n.octaves {
		fx, fy := x*freq, y*freq
		ix, iy := int(fx), int(fy)
		tx, ty := smooth(fx-float64(ix)), smooth(fy-float64(iy))
		a := n.grid[iy][ix] + (n.grid[iy][ix+1]-n.grid[iy][ix])*tx
		b := n.grid[iy+1][ix] + (n.grid[iy+1][ix+1]-n.grid[iy+1][ix])*tx
		sum += amp * (a + (b-a)*ty)
		norm += amp
		amp *= 0.5
		freq *= 2
	}
	return sum / norm
}

func smooth(t float64) float64 { return t * t * (3 - 2*t) }

// shape is a soft-edged object; sd returns a signed distance in pixels,
// negative inside.
type shape struct {
	sd     func(x, y float64) float64
	fill   rgb
	shade  float64 // top-to-bottom shading strength
	y0, y1 float64 // vertical extent, for shading
	blur   float64 // edge softness in pixels
	// bounding box, so rendering skips the shape for most pixels
	x0, x1, by0, by1 float64
}

func (sh shape) withBox(x0, y0, x1, y1 float64) shape {
	sh.x0, sh.by0, sh.x1, sh.by1 = x0-sh.blur-1, y0-sh.blur-1, x1+sh.blur+1, y1+sh.blur+1
	return sh
}

func ellipseSD(cx, cy, rx, ry float64) func(x, y float64) float64 {
	return func(x, y float64) float64 {
		dx, dy := (x-cx)/rx, (y-cy)/ry
		return (math.Sqrt(dx*dx+dy*dy) - 1) * math.Min(rx, ry)
	}
}

func rectSD(x0, y0, x1, y1 float64) func(x, y float64) float64 {
	return func(x, y float64) float64 {
		dx := math.Max(x0-x, x-x1)
		dy := math.Max(y0-y, y-y1)
		return math.Max(dx, dy)
	}
}

func triangleSD(ax, ay, bx, by, cx, cy float64) func(x, y float64) float64 {
	edge := func(px, py, qx, qy, x, y float64) float64 {
		nx, ny := qy-py, px-qx
		l := math.Hypot(nx, ny)
		return ((x-px)*nx + (y-py)*ny) / l
	}
	// Orient so that inside is negative for all three edges.
	s := 1.0
	if edge(ax, ay, bx, by, cx, cy) > 0 {
		s = -1
	}
	return func(x, y float64) float64 {
		return s * math.Max(edge(ax, ay, bx, by, x, y), math.Max(edge(bx, by, cx, cy, x, y), edge(cx, cy, ax, ay, x, y)))
	}
}

// scene holds everything needed to render one photo; shots of the same
// scene share the background and differ in where the objects are.
type scene struct {
	outdoor          bool
	top, mid, bottom rgb
	horizon          float64
	texture          valueNoise
	texAmp           float64
	light            rgb
	lightX, lightY   float64
	shapes           []shape
	grainSeed        uint64
	vignette         float64
}

func newScene(seed uint64, w, h int) scene {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	fw, fh := float64(w), float64(h)
	s := scene{
		outdoor:   rng.IntN(2) == 0,
		horizon:   0.3 + rng.Float64()*0.35,
		texture:   newValueNoise(rng, 3+rng.IntN(6), 4),
		texAmp:    10 + rng.Float64()*40,
		lightX:    rng.Float64(),
		lightY:    rng.Float64() * 0.6,
		grainSeed: rng.Uint64(),
		vignette:  rng.Float64() * 0.4,
	}
	if s.outdoor {
		s.top = rgb{60 + rng.Float64()*80, 110 + rng.Float64()*80, 180 + rng.Float64()*70}
		s.mid = mix(s.top, rgb{240, 240, 240}, rng.Float64())
		s.bottom = mix(randColor(rng), rgb{80, 120, 50}, 0.6)
	} else {
		s.top = randColor(rng).scale(0.5 + rng.Float64()*0.5)
		s.mid = mix(s.top, randColor(rng), 0.3)
		s.bottom = randColor(rng).scale(0.3 + rng.Float64()*0.5)
	}
	s.light = mix(rgb{255, 240, 200}, randColor(rng), 0.3).scale(0.2 + rng.Float64()*0.4)

	// Large furniture, buildings, trees and windows first, then banners,
	// then people in front.
	for range 1 + rng.IntN(4) {
		x0, y0 := rng.Float64()*fw, rng.Float64()*fh*0.8
		x1, y1 := x0+fw*(0.1+rng.Float64()*0.4), y0+fh*(0.1+rng.Float64()*0.4)
		s.shapes = append(s.shapes, shape{sd: rectSD(x0, y0, x1, y1), fill: randColor(rng), shade: rng.Float64() * 0.5, y0: y0, y1: y1, blur: 1 + rng.Float64()*3}.withBox(x0, y0, x1, y1))
	}
	if s.outdoor && rng.IntN(2) == 0 {
		for range 1 + rng.IntN(3) {
			cx, by := rng.Float64()*fw, s.horizon*fh+rng.Float64()*fh*0.2
			hw, th := fw*(0.04+rng.Float64()*0.1), fh*(0.2+rng.Float64()*0.3)
			s.shapes = append(s.shapes, shape{sd: triangleSD(cx-hw, by, cx+hw, by, cx, by-th), fill: rgb{30 + rng.Float64()*40, 80 + rng.Float64()*60, 30 + rng.Float64()*30}, shade: 0.3, y0: by - th, y1: by, blur: 2}.withBox(cx-hw, by-th, cx+hw, by))
		}
	}
	if rng.IntN(3) > 0 { // most activity photos have a banner
		bx0, by0 := fw*rng.Float64()*0.3, fh*(0.05+rng.Float64()*0.2)
		bx1, by1 := fw-fw*rng.Float64()*0.3, by0+fh*(0.06+rng.Float64()*0.06)
		s.shapes = append(s.shapes, shape{sd: rectSD(bx0, by0, bx1, by1), fill: rgb{190 + rng.Float64()*50, 20, 25}, blur: 1}.withBox(bx0, by0, bx1, by1))
		for x := bx0 + 10; x+12 < bx1-10; x += 16 + rng.Float64()*6 {
			gy0, gy1 := by0+(by1-by0)*0.25, by1-(by1-by0)*0.25
			s.shapes = append(s.shapes, shape{sd: rectSD(x, gy0, x+12, gy1), fill: rgb{250, 220, 80}, blur: 0.8}.withBox(x, gy0, x+12, gy1))
		}
	}
	for range rng.IntN(9) {
		cx := rng.Float64() * fw
		base := fh * (0.55 + rng.Float64()*0.45)
		ht := fh * (0.25 + rng.Float64()*0.35)
		bw := ht * (0.18 + rng.Float64()*0.1)
		body := randColor(rng)
		ellipse := func(cx, cy, rx, ry float64, fill rgb, shade float64) shape {
			return shape{sd: ellipseSD(cx, cy, rx, ry), fill: fill, shade: shade, y0: cy - ry, y1: cy + ry, blur: 1.5}.withBox(cx-rx, cy-ry, cx+rx, cy+ry)
		}
		s.shapes = append(s.shapes,
			ellipse(cx, base-ht*0.4, bw, ht*0.42, body, 0.4),
			ellipse(cx, base-ht*0.88, bw*0.55, ht*0.12, rgb{200 + rng.Float64()*40, 160 + rng.Float64()*40, 130 + rng.Float64()*30}, 0.2),
			ellipse(cx, base-ht*0.95, bw*0.58, ht*0.06, rgb{20, 18, 15}, 0),
		)
	}
	return s
}

// shot moves the people and the camera a little, as a second photo of the
// same activity a few seconds later would.
func (s scene) shot(seed uint64, w, h int) scene {
	rng := rand.New(rand.NewPCG(seed, 77))
	out := s
	out.shapes = nil
	pan := (rng.Float64() - 0.5) * float64(w) * 0.08
	for _, sh := range s.shapes {
		dx, dy := pan+(rng.Float64()-0.5)*float64(w)*0.1, (rng.Float64()-0.5)*float64(h)*0.03
		sd := sh.sd
		sh.sd = func(x, y float64) float64 { return sd(x-dx, y-dy) }
		sh.y0 += dy
		sh.y1 += dy
		sh.x0 += dx
		sh.x1 += dx
		sh.by0 += dy
		sh.by1 += dy
		out.shapes = append(out.shapes, sh)
	}
	out.grainSeed = rng.Uint64()
	return out
}

func (s scene) render(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	grain := rand.New(rand.NewPCG(s.grainSeed, 1))
	fw, fh := float64(w), float64(h)
	for y := range h {
		for x := range w {
			u, v := float64(x)/fw, float64(y)/fh
			var c rgb
			if v < s.horizon {
				c = mix(s.top, s.mid, v/s.horizon)
			} else {
				c = mix(s.mid.scale(0.8), s.bottom, (v-s.horizon)/(1-s.horizon))
			}
			n := s.texture.at(u*0.999, v*0.999) * s.texAmp
			if v < s.horizon && s.outdoor {
				n *= 0.4 // sky is smoother than the ground
			}
			c = rgb{c.r + n, c.g + n, c.b + n}
			px, py := float64(x)+0.5, float64(y)+0.5
			for _, sh := range s.shapes {
				if px < sh.x0 || px > sh.x1 || py < sh.by0 || py > sh.by1 {
					continue
				}
				d := sh.sd(px, py)
				if d > sh.blur {
					continue
				}
				a := 1.0
				if d > -sh.blur {
					a = 0.5 - d/(2*sh.blur)
				}
				f := sh.fill
				if sh.shade > 0 && sh.y1 > sh.y0 {
					f = f.scale(1 - sh.shade*math.Min(1, math.Max(0, (py-sh.y0)/(sh.y1-sh.y0))))
				}
				f = rgb{f.r + n*0.5, f.g + n*0.5, f.b + n*0.5}
				c = mix(c, f, a)
			}
			dl := math.Hypot(u-s.lightX, v-s.lightY)
			c = rgb{c.r + s.light.r*math.Exp(-dl*dl*4), c.g + s.light.g*math.Exp(-dl*dl*4), c.b + s.light.b*math.Exp(-dl*dl*4)}
			vg := 1 - s.vignette*((u-0.5)*(u-0.5)+(v-0.5)*(v-0.5))*2
			g := grain.NormFloat64() * 3
			i := img.PixOffset(x, y)
			img.Pix[i] = clamp8(c.r*vg + g)
			img.Pix[i+1] = clamp8(c.g*vg + g)
			img.Pix[i+2] = clamp8(c.b*vg + g)
			img.Pix[i+3] = 255
		}
	}
	return img
}

func clamp8(v float64) uint8 {
	return uint8(math.Round(math.Min(255, math.Max(0, v))))
}

// transform is one way people re-use a photo.
type transform struct {
	name  string
	apply func(img image.Image, rng *rand.Rand) (image.Image, error)
}

func reencode(quality int) func(image.Image, *rand.Rand) (image.Image, error) {
	return func(img image.Image, _ *rand.Rand) (image.Image, error) {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
			return nil, err
		}
		return jpeg.Decode(&buf)
	}
}

func cropEdges(img image.Image, rng *rand.Rand) (image.Image, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	frac := func() float64 { return 0.02 + rng.Float64()*0.03 }
	r := image.Rect(int(float64(w)*frac()), int(float64(h)*frac()), w-int(float64(w)*frac()), h-int(float64(h)*frac()))
	return imaging.Resize(imaging.Crop(img, r), w, h, imaging.Lanczos), nil
}

// captionBand paints a solid bar over the bottom 10–12 % with rows of
// glyph-sized blocks, as a watermarking or "beautify" app does.
func captionBand(img image.Image, rng *rand.Rand) (image.Image, error) {
	out := imaging.Clone(img)
	b := out.Bounds()
	w, h := b.Dx(), b.Dy()
	bandH := int(float64(h) * (0.10 + rng.Float64()*0.02))
	bg, fg := color.NRGBA{0, 0, 0, 255}, color.NRGBA{255, 255, 255, 255}
	if rng.IntN(2) == 0 {
		bg, fg = fg, color.NRGBA{30, 30, 30, 255}
	}
	for y := h - bandH; y < h; y++ {
		for x := range w {
			out.SetNRGBA(x, y, bg)
		}
	}
	glyph := max(bandH/4, 3)
	for row := range 2 {
		y0 := h - bandH + glyph/2 + row*(glyph+glyph/2)
		end := w*2/3 + rng.IntN(w/3)
		for x := glyph; x+glyph < end; x += glyph + glyph/3 {
			if rng.IntN(8) == 0 {
				continue // a space between words
			}
			for y := y0; y < y0+glyph && y < h; y++ {
				for xx := x; xx < x+glyph; xx++ {
					if rng.IntN(3) > 0 {
						out.SetNRGBA(xx, y, fg)
					}
				}
			}
		}
	}
	return out, nil
}

// transforms are the copies that must be flagged. Each starts from the
// original pixels; the ones a phone would save again go through JPEG too.
func copyTransforms() []transform {
	return []transform{
		{"jpeg q75", reencode(75)},
		{"jpeg q60", reencode(60)},
		{"resize 50%", func(img image.Image, _ *rand.Rand) (image.Image, error) {
			b := img.Bounds()
			return imaging.Resize(img, b.Dx()/2, b.Dy()/2, imaging.Linear), nil
		}},
		{"crop 2-5%/edge", func(img image.Image, rng *rand.Rand) (image.Image, error) {
			c, _ := cropEdges(img, rng)
			return reencode(85)(c, rng)
		}},
		{"brightness +15%", func(img image.Image, rng *rand.Rand) (image.Image, error) {
			return reencode(85)(imaging.AdjustBrightness(img, 15), rng)
		}},
		{"caption band", func(img image.Image, rng *rand.Rand) (image.Image, error) {
			c, _ := captionBand(img, rng)
			return reencode(85)(c, rng)
		}},
		{"crop+caption+q75", func(img image.Image, rng *rand.Rand) (image.Image, error) {
			c, _ := cropEdges(img, rng)
			c, _ = captionBand(c, rng)
			return reencode(75)(c, rng)
		}},
	}
}
