package neardup

import (
	"fmt"
	"go/build"
	"image"
	_ "image/jpeg" // real-photo check decodes JPEG
	_ "image/png"  // and PNG
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// qualityResult is what one evaluation run measured.
type qualityResult struct {
	copies     map[string][]int // transform → combined distance of each copy
	flagged    map[string]int   // transform → copies the index+Near pipeline flagged
	total      map[string]int
	pHash      map[string][]int // transform → min(pHash, topPHash) distance
	unrelated  []int            // combined distance of every pair of distinct bases
	unrelatedP []int
	falsePos   int // unrelated pairs Near flags
	pairs      int
	shots      []int // same scene, different moment
	shotsNear  int
}

func parallelMap[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// mustCompute reports a failure without stopping, since it runs on the
// worker goroutines of parallelMap where FailNow is not allowed.
func mustCompute(t testing.TB, img image.Image) Fingerprint {
	t.Helper()
	f, err := Compute(img)
	if err != nil {
		t.Errorf("Compute: %v", err)
	}
	return f
}

// evaluate runs the app's pipeline: every base photo is indexed under its
// two keys; each transformed copy searches the index at DefaultRadius and
// confirms candidates with Near. A copy counts as caught only if its own
// original is confirmed.
func evaluate(t testing.TB, n, w, h, shots int) qualityResult {
	t.Helper()
	bases := parallelMap(n, func(i int) *image.NRGBA {
		return newScene(uint64(i)*1000003+1, w, h).render(w, h)
	})
	fps := parallelMap(n, func(i int) Fingerprint { return mustCompute(t, bases[i]) })
	ix := NewIndex(DefaultRadius)
	for i, f := range fps {
		for _, k := range f.IndexKeys() {
			ix.Add(fmt.Sprintf("base%03d", i), k)
		}
	}
	res := qualityResult{copies: map[string][]int{}, flagged: map[string]int{}, total: map[string]int{}, pHash: map[string][]int{}}
	for ti, tr := range copyTransforms() {
		type one struct {
			score, p int
			caught   bool
		}
		got := parallelMap(n, func(i int) one {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(ti)))
			img, err := tr.apply(bases[i], rng)
			if err != nil {
				t.Errorf("%s: %v", tr.name, err)
				return one{}
			}
			c := mustCompute(t, img)
			_, score := c.Near(fps[i])
			p := min(bits.OnesCount64(c.PHash^fps[i].PHash), bits.OnesCount64(c.TopPHash^fps[i].TopPHash))
			return one{score: score, p: p, caught: slices.Contains(flaggedRefs(ix, c, fps), fmt.Sprintf("base%03d", i))}
		})
		for _, o := range got {
			res.copies[tr.name] = append(res.copies[tr.name], o.score)
			res.pHash[tr.name] = append(res.pHash[tr.name], o.p)
			res.total[tr.name]++
			if o.caught {
				res.flagged[tr.name]++
			}
		}
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			near, score := fps[i].Near(fps[j])
			res.unrelated = append(res.unrelated, score)
			res.unrelatedP = append(res.unrelatedP, min(bits.OnesCount64(fps[i].PHash^fps[j].PHash), bits.OnesCount64(fps[i].TopPHash^fps[j].TopPHash)))
			res.pairs++
			if near {
				res.falsePos++
			}
		}
	}
	shotFps := parallelMap(shots, func(i int) Fingerprint {
		s := newScene(uint64(i)*1000003+1, w, h).shot(uint64(i), w, h)
		return mustCompute(t, s.render(w, h))
	})
	for i, f := range shotFps {
		near, score := f.Near(fps[i])
		res.shots = append(res.shots, score)
		if near {
			res.shotsNear++
		}
	}
	return res
}

// flaggedRefs is the app's lookup: search both keys, confirm with Near.
func flaggedRefs(ix *Index, c Fingerprint, fps []Fingerprint) []Ref {
	var out []Ref
	for _, k := range c.IndexKeys() {
		for _, m := range ix.Search(k, DefaultRadius) {
			var i int
			if _, err := fmt.Sscanf(m.Ref, "base%03d", &i); err != nil {
				continue
			}
			if near, _ := c.Near(fps[i]); near && !slices.Contains(out, m.Ref) {
				out = append(out, m.Ref)
			}
		}
	}
	return out
}

func TestDetectionQuality(t *testing.T) {
	// Small enough for -race; the full 200-photo run is TestReportQuality.
	res := evaluate(t, 12, 240, 180, 0)
	for _, tr := range copyTransforms() {
		got, total := res.flagged[tr.name], res.total[tr.name]
		// Re-encodes and resizes must always be caught; the geometric and
		// tonal edits may lose the odd photo.
		want := total
		if !strings.HasPrefix(tr.name, "jpeg") && !strings.HasPrefix(tr.name, "resize") {
			want = total * 9 / 10
		}
		if got < want {
			t.Errorf("%s: flagged %d of %d reused photos, want at least %d (distances %v)", tr.name, got, total, want, res.copies[tr.name])
		}
	}
	if res.falsePos != 0 {
		t.Errorf("%d of %d pairs of unrelated photos flagged as reused", res.falsePos, res.pairs)
	}
}

func TestComputeRejectsEmptyImage(t *testing.T) {
	tests := []struct {
		name string
		img  image.Image
	}{
		{"nil", nil},
		{"zero size", image.NewRGBA(image.Rect(0, 0, 0, 0))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Compute(tc.img); err == nil {
				t.Error("Compute accepted an image with no pixels")
			}
		})
	}
}

func TestNearIsSymmetricAndExactForIdentical(t *testing.T) {
	img := newScene(9, 160, 120).render(160, 120)
	f := mustCompute(t, img)
	if near, d := f.Near(f); !near || d != 0 {
		t.Errorf("a photo compared with itself: near=%v distance=%d, want true 0", near, d)
	}
	g := mustCompute(t, newScene(10, 160, 120).render(160, 120))
	n1, d1 := f.Near(g)
	n2, d2 := g.Near(f)
	if n1 != n2 || d1 != d2 {
		t.Errorf("Near is not symmetric: (%v,%d) vs (%v,%d)", n1, d1, n2, d2)
	}
}

// TestReportQuality is the full measurement written up in docs/neardup.md:
// 200 synthetic 640×480 base photos, seven ways of reusing each, every pair
// of distinct bases, and 40 second shots of the same scene. Run it with
//
//	QJMZ_BENCH_REPORT=1 go test -run TestReportQuality -v ./pkg/neardup/
func TestReportQuality(t *testing.T) {
	if os.Getenv("QJMZ_BENCH_REPORT") != "1" {
		t.Skip("set QJMZ_BENCH_REPORT=1 for the full detection-quality measurement")
	}
	res := evaluate(t, 200, 640, 480, 40)
	t.Logf("thresholds: index radius %d on pHash (whole or top), Near: combined pHash+dHash <= %d", DefaultRadius, NearThreshold)
	var all []int
	caught, total := 0, 0
	for _, tr := range copyTransforms() {
		d := slices.Sorted(slices.Values(res.copies[tr.name]))
		p := slices.Sorted(slices.Values(res.pHash[tr.name]))
		t.Logf("%-18s recall %3d/%3d = %5.1f%%  combined distance median %2d max %2d | best-region pHash median %2d max %2d",
			tr.name, res.flagged[tr.name], res.total[tr.name], 100*float64(res.flagged[tr.name])/float64(res.total[tr.name]),
			d[len(d)/2], d[len(d)-1], p[len(p)/2], p[len(p)-1])
		all = append(all, d...)
		caught += res.flagged[tr.name]
		total += res.total[tr.name]
	}
	t.Logf("all copies: recall %d/%d = %.1f%%", caught, total, 100*float64(caught)/float64(total))
	u := slices.Sorted(slices.Values(res.unrelated))
	up := slices.Sorted(slices.Values(res.unrelatedP))
	t.Logf("unrelated pairs: %d flagged of %d = FP rate %.4f%%; combined distance min %d, 0.1%% %d, median %d; best-region pHash min %d, 0.1%% %d",
		res.falsePos, res.pairs, 100*float64(res.falsePos)/float64(res.pairs), u[0], u[len(u)/1000], u[len(u)/2], up[0], up[len(up)/1000])
	s := slices.Sorted(slices.Values(res.shots))
	t.Logf("same scene, second shot (people moved, camera panned): %d of %d flagged; combined distance min %d median %d",
		res.shotsNear, len(res.shots), s[0], s[len(s)/2])
	t.Log("histogram of combined distance (min over whole/top; bins of 4):")
	t.Log("  dist   copies  unrelated")
	for lo := 0; lo <= 64; lo += 4 {
		t.Logf("  %2d-%2d  %6d  %9d", lo, lo+3, countIn(all, lo, lo+3), countIn(u, lo, lo+3))
	}
	realPhotoCheck(t)
}

func countIn(xs []int, lo, hi int) int {
	n := 0
	for _, x := range xs {
		if x >= lo && x <= hi {
			n++
		}
	}
	return n
}

// realPhotoCheck repeats the measurement on the few real photographs that
// happen to sit in the Go module cache of the build machine (test assets of
// dependencies). They are not part of the repo, so missing files are
// skipped; they are a sanity check of the synthetic corpus, not a benchmark.
func realPhotoCheck(t *testing.T) {
	mod := os.Getenv("GOMODCACHE")
	if mod == "" {
		mod = filepath.Join(build.Default.GOPATH, "pkg", "mod")
	}
	paths := []string{
		"github.com/dsoprea/go-exif/v3@v3.0.1/assets/NDM_8901.jpg",
		"github.com/dsoprea/go-exif/v3@v3.0.1/assets/gps.jpg",
		"github.com/disintegration/imaging@v1.6.2/testdata/branches.jpg",
		"github.com/disintegration/imaging@v1.6.2/testdata/flowers.png",
		"golang.org/x/image@v0.48.0/testdata/yellow_rose.png",
		"golang.org/x/image@v0.48.0/testdata/blue-purple-pink-large.png",
		"golang.org/x/image@v0.48.0/testdata/go-turns-two-280x360.jpeg",
		"github.com/corona10/goimagehash@v1.1.0/_examples/sample1.jpg",
		"github.com/corona10/goimagehash@v1.1.0/_examples/sample4.jpg",
	}
	var names []string
	var fps []Fingerprint
	var imgs []image.Image
	for _, p := range paths {
		f, err := os.Open(filepath.Join(mod, p))
		if err != nil {
			continue
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			continue
		}
		names = append(names, filepath.Base(p))
		imgs = append(imgs, img)
		fps = append(fps, mustCompute(t, img))
	}
	if len(imgs) < 2 {
		t.Log("real-photo check: fewer than two real photos found in the module cache; skipped")
		return
	}
	t.Logf("real-photo check on %d photos from the module cache: %v", len(imgs), names)
	for ti, tr := range copyTransforms() {
		var ds []string
		caught := 0
		for i, img := range imgs {
			c, err := tr.apply(img, rand.New(rand.NewPCG(uint64(i), uint64(ti))))
			if err != nil {
				t.Fatal(err)
			}
			near, d := mustCompute(t, c).Near(fps[i])
			if near {
				caught++
			}
			ds = append(ds, fmt.Sprint(d))
		}
		t.Logf("  %-18s %d/%d flagged, combined distances %s", tr.name, caught, len(imgs), strings.Join(ds, " "))
	}
	var ds []int
	fp := 0
	for i := range fps {
		for j := i + 1; j < len(fps); j++ {
			near, d := fps[i].Near(fps[j])
			ds = append(ds, d)
			if near {
				fp++
				t.Logf("  unrelated pair flagged: %s ~ %s (distance %d)", names[i], names[j], d)
			}
		}
	}
	slices.Sort(ds)
	t.Logf("  unrelated pairs: %d of %d flagged; combined distance min %d median %d", fp, len(ds), ds[0], ds[len(ds)/2])
}
