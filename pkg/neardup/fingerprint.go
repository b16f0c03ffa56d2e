package neardup

import (
	"errors"
	"fmt"
	"image"
	"math/bits"

	"github.com/corona10/goimagehash"
	"github.com/disintegration/imaging"
)

// Thresholds chosen from the distance histograms in docs/neardup.md.
const (
	// DefaultRadius is the Hamming radius the app searches the index with,
	// on both PHash and TopPHash. Re-encoding, resizing and caption bands
	// move the closer region's pHash by at most 4 bits, brightening by 12,
	// a 2–5 % crop by up to 16 (99 % within 14). Unrelated photos share a
	// pHash within 14 bits too, so the radius only gathers candidates;
	// NearThreshold decides. Past 14 the search gets slower for the last
	// percent of crops.
	DefaultRadius = 14
	// NearThreshold bounds the combined pHash+dHash distance (out of 128
	// bits) of the closer region. Copies measured at most 23, the closest
	// unrelated pair 24 and 0.1 % of unrelated pairs below 30: 22 keeps a
	// margin on the unrelated side, because every upload is compared with
	// every stored photo and false alarms multiply with the platform's size.
	NearThreshold = 22
)

// ErrNoImage is returned for a nil or zero-sized image.
var ErrNoImage = errors.New("neardup: empty image")

// Fingerprint is what the app stores per photo. Each pair of hashes is taken
// twice: over the whole frame, and over its top 85 %, because "watermark
// camera" apps and editors paste a caption band over the bottom of a reused
// photo, which moves the whole-frame pHash by up to 20 bits but leaves the
// rest of the frame untouched.
type Fingerprint struct {
	PHash    uint64 // pHash (DCT) of the whole frame; the primary index key
	DHash    uint64 // dHash (gradient) of the whole frame; confirms PHash
	TopPHash uint64 // pHash of the top 85 %; the second index key
	TopDHash uint64 // dHash of the top 85 %; confirms TopPHash
}

// hashSide is the size the image is reduced to before hashing, once: hashes
// look only at an 8×8 to 64×64 thumbnail anyway, and resizing a 12-MP photo
// once is far cheaper than letting each hash do it.
const hashSide = 256

// topFraction is the share of the frame kept for the Top hashes; caption
// bands are 10–12 % of the height.
const topFraction = 0.85

// Compute returns the fingerprint of a decoded photo.
func Compute(img image.Image) (Fingerprint, error) {
	if img == nil || img.Bounds().Empty() {
		return Fingerprint{}, ErrNoImage
	}
	small := imaging.Fit(img, hashSide, hashSide, imaging.Box)
	b := small.Bounds()
	top := imaging.Crop(small, image.Rect(0, 0, b.Dx(), max(1, int(float64(b.Dy())*topFraction))))

	var f Fingerprint
	var err error
	if f.PHash, f.DHash, err = hashPair(small); err != nil {
		return Fingerprint{}, fmt.Errorf("neardup: whole frame: %w", err)
	}
	if f.TopPHash, f.TopDHash, err = hashPair(top); err != nil {
		return Fingerprint{}, fmt.Errorf("neardup: top of frame: %w", err)
	}
	return f, nil
}

func hashPair(img image.Image) (p, d uint64, err error) {
	ph, err := goimagehash.PerceptionHash(img)
	if err != nil {
		return 0, 0, fmt.Errorf("phash: %w", err)
	}
	dh, err := goimagehash.DifferenceHash(img)
	if err != nil {
		return 0, 0, fmt.Errorf("dhash: %w", err)
	}
	return ph.GetHash(), dh.GetHash(), nil
}

// IndexKeys are the hashes the app adds to one Index under the photo's
// ref, and searches with at DefaultRadius. Keeping both kinds in one index
// costs a cross-kind comparison now and then, which Near filters out.
func (f Fingerprint) IndexKeys() [2]uint64 { return [2]uint64{f.PHash, f.TopPHash} }

// Near is the decision rule: f and g are near-duplicates if, for the whole
// frame or for its top part, the pHash is within DefaultRadius (so the
// index finds it) and pHash plus dHash differ in at most NearThreshold of
// their 128 bits. It returns that combined distance of the closer region,
// which the reviewer sees as a similarity score (0 = identical).
func (f Fingerprint) Near(g Fingerprint) (bool, int) {
	whole := bits.OnesCount64(f.PHash^g.PHash) + bits.OnesCount64(f.DHash^g.DHash)
	top := bits.OnesCount64(f.TopPHash^g.TopPHash) + bits.OnesCount64(f.TopDHash^g.TopDHash)
	near := bits.OnesCount64(f.PHash^g.PHash) <= DefaultRadius && whole <= NearThreshold ||
		bits.OnesCount64(f.TopPHash^g.TopPHash) <= DefaultRadius && top <= NearThreshold
	return near, min(whole, top)
}
