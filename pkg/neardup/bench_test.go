package neardup

import (
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/disintegration/imaging"
)

// benchSize is platform scale: ~14 agencies × 360 communities × years of
// weekly sessions with several photos each stays under a million photos.
const benchSize = 1_000_000

// benchCorpus holds benchSize stored hashes, a tenth of the queries with a
// planted copy a few bits away (the case a real upload of a reused photo
// produces), and the rest with nothing near them (the common case).
type benchCorpus struct {
	hashes  []uint64
	refs    []Ref
	queries []uint64
}

func newBenchCorpus(n, queries int) benchCorpus {
	rng := rand.New(rand.NewPCG(42, 42))
	c := benchCorpus{hashes: make([]uint64, 0, n), refs: make([]Ref, 0, n)}
	for i := range n {
		c.hashes = append(c.hashes, rng.Uint64())
		c.refs = append(c.refs, fmt.Sprintf("01J%023d", i)) // ULID-sized refs
	}
	for i := range queries {
		q := rng.Uint64()
		if i%10 == 0 {
			j := rng.IntN(n)
			q = flipBits(rng, c.hashes[j], rng.IntN(DefaultRadius+1))
		}
		c.queries = append(c.queries, q)
	}
	return c
}

func (c benchCorpus) index() *Index {
	ix := NewIndex(DefaultRadius)
	for i, h := range c.hashes {
		ix.Add(c.refs[i], h)
	}
	return ix
}

func BenchmarkSearch(b *testing.B) {
	c := newBenchCorpus(benchSize, 1000)
	ix := c.index()
	for _, r := range []int{DefaultRadius - 4, DefaultRadius, DefaultRadius + 2} {
		b.Run(fmt.Sprintf("r=%d", r), func(b *testing.B) {
			i := 0
			for b.Loop() {
				ix.Search(c.queries[i%len(c.queries)], r)
				i++
			}
		})
	}
}

func BenchmarkLinearScan(b *testing.B) {
	c := newBenchCorpus(benchSize, 1000)
	i := 0
	for b.Loop() {
		LinearScan(c.hashes, c.refs, c.queries[i%len(c.queries)], DefaultRadius)
		i++
	}
}

// TestReportLatency prints median and p99 lookup latency of Index.Search and
// LinearScan over the same million hashes and queries in one run, and the
// index's memory per stored hash. It is a measurement, not a check of
// speed, so it only asserts that both answer the same; it runs only with
// QJMZ_BENCH_REPORT=1 because building a million-entry index is slow under
// -race.
func TestReportLatency(t *testing.T) {
	if os.Getenv("QJMZ_BENCH_REPORT") != "1" {
		t.Skip("set QJMZ_BENCH_REPORT=1 to measure lookup latency over 1,000,000 hashes")
	}
	const lookups = 10_000
	// 2M entries is the app's own layout at a million photos: each photo is
	// indexed under two keys (Fingerprint.IndexKeys).
	for _, size := range []int{benchSize, 2 * benchSize} {
		c := newBenchCorpus(size, lookups)
		heapBefore := liveHeap()
		start := time.Now()
		ix := c.index()
		build := time.Since(start)
		heapAfter := liveHeap()
		t.Logf("GOMAXPROCS=%d, %d stored hashes, %d lookups each way", runtime.GOMAXPROCS(0), ix.Len(), lookups)
		t.Logf("index build: %v; index heap %.1f MB = %.0f bytes per stored hash (ref strings are shared with the caller, not counted: %d bytes each)",
			build.Round(time.Millisecond), float64(heapAfter-heapBefore)/1e6, float64(heapAfter-heapBefore)/float64(ix.Len()), 16+26)

		for _, r := range []int{DefaultRadius - 4, DefaultRadius, DefaultRadius + 2} {
			idxTimes := make([]time.Duration, 0, lookups)
			linTimes := make([]time.Duration, 0, lookups)
			found := 0
			for _, q := range c.queries {
				s := time.Now()
				got := ix.Search(q, r)
				idxTimes = append(idxTimes, time.Since(s))
				s = time.Now()
				want := LinearScan(c.hashes, c.refs, q, r)
				linTimes = append(linTimes, time.Since(s))
				if !slices.Equal(got, want) {
					t.Fatalf("radius %d: index and linear scan disagree for %016x: %v vs %v", r, q, got, want)
				}
				found += len(got)
			}
			im, ip := medianP99(idxTimes)
			lm, lp := medianP99(linTimes)
			t.Logf("radius %2d: index median %8v p99 %8v | linear median %8v p99 %8v | %d matches in total",
				r, im.Round(time.Microsecond), ip.Round(time.Microsecond), lm.Round(time.Microsecond), lp.Round(time.Microsecond), found)
		}
		runtime.KeepAlive(ix)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func medianP99(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100]
}

// BenchmarkCompute is the fingerprint cost per upload, after decoding.
func BenchmarkCompute(b *testing.B) {
	base := newScene(1, 640, 480).render(640, 480)
	for _, size := range []image.Point{{640, 480}, {4032, 3024}} {
		img := imaging.Resize(base, size.X, size.Y, imaging.Linear)
		b.Run(fmt.Sprintf("%dx%d", size.X, size.Y), func(b *testing.B) {
			for b.Loop() {
				if _, err := Compute(img); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
