package media

import "image"

// Phone photos decode to *image.YCbCr. Working on its planes directly keeps
// them at 1.5 bytes per pixel: the generic image paths would first expand a
// 12 MP photo into a 48 MB RGBA copy, and that conversion is most of their
// cost. Everything here falls back (returns ok=false) for layouts it does
// not handle, and the callers then take the generic path.

// chromaShift returns log2 of the horizontal and vertical chroma
// subsampling of r.
func chromaShift(r image.YCbCrSubsampleRatio) (h, v uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// orientYCbCr applies EXIF orientation o (2–8) plane by plane. A 90° turn
// swaps the chroma subsampling axes, so 4:2:2 becomes 4:4:0; layouts whose
// swap has no image.YCbCrSubsampleRatio (4:1:1, 4:1:0) are not handled.
// Neither are sizes that are not a whole number of chroma blocks: flipping
// those would shift colour by half a chroma sample against the luma.
func orientYCbCr(src *image.YCbCr, o int) (*image.YCbCr, bool) {
	hs, vs, ok := chromaShift(src.SubsampleRatio)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	if !ok || src.Rect.Min != (image.Point{}) || w%(1<<hs) != 0 || h%(1<<vs) != 0 {
		return nil, false
	}
	ratio := src.SubsampleRatio
	transposed := o >= 5
	if transposed {
		w, h = h, w
		switch ratio {
		case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
		case image.YCbCrSubsampleRatio422:
			ratio = image.YCbCrSubsampleRatio440
		case image.YCbCrSubsampleRatio440:
			ratio = image.YCbCrSubsampleRatio422
		default:
			return nil, false
		}
	}
	dst := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	transformPlane(dst.Y, dst.YStride, src.Y, src.YStride, sw, sh, o)
	cw, ch := sw>>hs, sh>>vs
	transformPlane(dst.Cb, dst.CStride, src.Cb, src.CStride, cw, ch, o)
	transformPlane(dst.Cr, dst.CStride, src.Cr, src.CStride, cw, ch, o)
	return dst, true
}

// transformPlane writes the sw×sh plane src into dst as seen after EXIF
// orientation o (dst is sh×sw for o ≥ 5).
func transformPlane(dst []byte, dstStride int, src []byte, srcStride, sw, sh, o int) {
	dw, dh := sw, sh
	if o >= 5 {
		dw, dh = sh, sw
	}
	for y := range dh {
		row := dst[y*dstStride : y*dstStride+dw]
		for x := range row {
			var sx, sy int
			switch o {
			case 2: // mirrored
				sx, sy = sw-1-x, y
			case 3: // upside down
				sx, sy = sw-1-x, sh-1-y
			case 4: // mirrored upside down
				sx, sy = x, sh-1-y
			case 5: // transpose
				sx, sy = y, x
			case 6: // turn 90° clockwise
				sx, sy = y, sh-1-x
			case 7: // transverse
				sx, sy = sw-1-y, sh-1-x
			case 8: // turn 90° counter-clockwise
				sx, sy = sw-1-y, x
			default:
				sx, sy = x, y
			}
			row[x] = src[sy*srcStride+sx]
		}
	}
}

// shrinkYCbCr averages k×k blocks into a 4:4:4 image (partial blocks at the
// right and bottom edges average what they have). Averaging Y, Cb and Cr is
// the same as averaging RGB because the conversion between them is affine.
func shrinkYCbCr(src *image.YCbCr, k int) (*image.YCbCr, bool) {
	hs, vs, ok := chromaShift(src.SubsampleRatio)
	if !ok || k < 2 || src.Rect.Min != (image.Point{}) {
		return nil, false
	}
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := (sw+k-1)/k, (sh+k-1)/k
	dst := image.NewYCbCr(image.Rect(0, 0, dw, dh), image.YCbCrSubsampleRatio444)
	sumY := make([]uint32, dw)
	sumCb := make([]uint32, dw)
	sumCr := make([]uint32, dw)
	for dy := range dh {
		clear(sumY)
		clear(sumCb)
		clear(sumCr)
		y0, y1 := dy*k, min(dy*k+k, sh)
		for y := y0; y < y1; y++ {
			yRow := src.Y[y*src.YStride:]
			cOff := (y >> vs) * src.CStride
			cbRow, crRow := src.Cb[cOff:], src.Cr[cOff:]
			for x := range sw {
				i := x / k
				sumY[i] += uint32(yRow[x])
				sumCb[i] += uint32(cbRow[x>>hs])
				sumCr[i] += uint32(crRow[x>>hs])
			}
		}
		rows := uint32(y1 - y0)
		yOut, cOut := dy*dst.YStride, dy*dst.CStride
		for i := range dw {
			n := rows * uint32(min(k, sw-i*k))
			dst.Y[yOut+i] = uint8((sumY[i] + n/2) / n)
			dst.Cb[cOut+i] = uint8((sumCb[i] + n/2) / n)
			dst.Cr[cOut+i] = uint8((sumCr[i] + n/2) / n)
		}
	}
	return dst, true
}
