package neardup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// flipBits returns h with k distinct random bits flipped.
func flipBits(rng *rand.Rand, h uint64, k int) uint64 {
	for _, b := range rng.Perm(64)[:k] {
		h ^= 1 << b
	}
	return h
}

// corpus is a set of stored pairs plus queries with neighbours planted at
// every distance up to 16, so exactness is tested where matches exist and
// not only on random hashes that match nothing.
type corpus struct {
	hashes  []uint64
	refs    []Ref
	queries []uint64
}

func newCorpus(rng *rand.Rand, n, queries int) corpus {
	var c corpus
	add := func(h uint64) {
		c.refs = append(c.refs, fmt.Sprintf("r%07d", len(c.hashes)))
		c.hashes = append(c.hashes, h)
	}
	for range n {
		add(rng.Uint64())
	}
	for range queries {
		q := rng.Uint64()
		c.queries = append(c.queries, q)
		for d := 0; d <= 16; d++ {
			add(flipBits(rng, q, d))
		}
		// Neighbours concentrated in one chunk stress the pigeonhole bound.
		add(q ^ uint64(rng.IntN(1<<12)))
		add(q ^ (uint64(rng.IntN(1<<12)) << 48))
	}
	// A query that is itself stored, and a hash stored under two refs.
	c.queries = append(c.queries, c.hashes[0])
	add(c.hashes[1])
	return c
}

func TestIndexSearchMatchesLinearScan(t *testing.T) {
	tests := []struct {
		name   string
		chunks int // 0: NewIndex(DefaultRadius)
		n      int
		radii  []int
	}{
		{"default tuning", 0, 5000, []int{0, 1, 3, 5, 8, 10, 11, 12, 13, DefaultRadius, 16}},
		{"four 16-bit chunks", 4, 20000, []int{0, 4, 7, 12, 13}},
		{"five uneven chunks", 5, 20000, []int{2, 9, 12, 15, 16}},
		{"seven uneven chunks", 7, 20000, []int{1, 6, 12, 14}},
		{"eight chunks", 8, 3000, []int{0, 7, 8, 9, 16}},
		{"radius too wide for probing falls back to a scan", 6, 3000, []int{20, 30, 64}},
		{"empty index", 0, 0, []int{0, 12}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			c := corpus{queries: []uint64{rng.Uint64()}}
			if tc.n > 0 {
				c = newCorpus(rng, tc.n, 20)
			}
			ix := NewIndex(DefaultRadius)
			if tc.chunks > 0 {
				ix = newIndexChunks(tc.chunks)
			}
			for j := range c.hashes {
				ix.Add(c.refs[j], c.hashes[j])
			}
			if ix.Len() != len(c.hashes) {
				t.Fatalf("Len() = %d, want %d", ix.Len(), len(c.hashes))
			}
			for _, r := range tc.radii {
				for _, q := range c.queries {
					got := ix.Search(q, r)
					want := LinearScan(c.hashes, c.refs, q, r)
					if !slices.Equal(got, want) {
						t.Fatalf("radius %d query %016x: index found %d matches, linear scan %d\nindex:  %v\nlinear: %v",
							r, q, len(got), len(want), got, want)
					}
				}
			}
		})
	}
}

func TestIndexFindsPlantedCopyAtEveryDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	ix := NewIndex(DefaultRadius)
	for i := range 5000 {
		ix.Add(fmt.Sprintf("noise%d", i), rng.Uint64())
	}
	q := rng.Uint64()
	for d := 0; d <= DefaultRadius; d++ {
		planted := flipBits(rng, q, d)
		ref := fmt.Sprintf("planted%02d", d)
		ix.Add(ref, planted)
		found := false
		for _, m := range ix.Search(q, DefaultRadius) {
			if m.Ref == ref {
				found = m.Distance == d && m.Hash == planted
			}
		}
		if !found {
			t.Errorf("a stored photo %d bits away from the query was not reported with that distance", d)
		}
	}
}

func TestIndexAddRemove(t *testing.T) {
	const h = 0xdeadbeefcafef00d
	tests := []struct {
		name    string
		ops     func(ix *Index)
		want    []Ref
		wantLen int
	}{
		{"add twice is one entry", func(ix *Index) {
			ix.Add("a", h)
			ix.Add("a", h)
		}, []Ref{"a"}, 1},
		{"remove forgets the photo", func(ix *Index) {
			ix.Add("a", h)
			ix.Add("b", h^1)
			ix.Remove("a", h)
		}, []Ref{"b"}, 1},
		{"remove with the wrong hash keeps the photo", func(ix *Index) {
			ix.Add("a", h)
			ix.Remove("a", h^1)
			ix.Remove("zzz", h)
		}, []Ref{"a"}, 1},
		{"removed slot is reused without resurrecting the old ref", func(ix *Index) {
			ix.Add("a", h)
			ix.Remove("a", h)
			ix.Add("c", h^3)
		}, []Ref{"c"}, 1},
		{"one ref may carry several hashes", func(ix *Index) {
			ix.Add("a", h)
			ix.Add("a", h^1)
		}, []Ref{"a", "a"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex(DefaultRadius)
			tc.ops(ix)
			var got []Ref
			for _, m := range ix.Search(h, 4) {
				got = append(got, m.Ref)
			}
			if !slices.Equal(got, tc.want) || ix.Len() != tc.wantLen {
				t.Errorf("search found %v with Len %d, want %v with Len %d", got, ix.Len(), tc.want, tc.wantLen)
			}
		})
	}
}

func TestIndexSearchOrderAndNegativeRadius(t *testing.T) {
	ix := NewIndex(DefaultRadius)
	ix.Add("z", 0b111)
	ix.Add("b", 0b1)
	ix.Add("a", 0b1)
	ix.Add("c", 0)
	got := ix.Search(0, 3)
	want := []Match{{"c", 0, 0}, {"a", 1, 1}, {"b", 1, 1}, {"z", 7, 3}}
	if !slices.Equal(got, want) {
		t.Errorf("Search order = %v, want closest first then by ref %v", got, want)
	}
	if got := ix.Search(0, -1); got != nil {
		t.Errorf("negative radius matched %v", got)
	}
}

// TestIndexConcurrentUse is for -race: uploads add and delete photos while
// submissions search.
func TestIndexConcurrentUse(t *testing.T) {
	ix := NewIndex(DefaultRadius)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 300 {
				ref := fmt.Sprintf("w%d-%d", w, i)
				h := rng.Uint64()
				ix.Add(ref, h)
				if ms := ix.Search(h, 2); !slices.ContainsFunc(ms, func(m Match) bool { return m.Ref == ref }) {
					t.Errorf("photo %s not found right after it was added", ref)
					return
				}
				if i%3 == 0 {
					ix.Remove(ref, h)
				}
			}
		})
	}
	wg.Wait()
	if ix.Len() != 4*200 {
		t.Errorf("Len() = %d after concurrent adds and removes, want %d", ix.Len(), 4*200)
	}
}

func TestLinearScanPanicsOnMismatchedSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("LinearScan with a hash lacking a ref did not panic")
		}
	}()
	LinearScan([]uint64{1, 2}, []Ref{"a"}, 0, 3)
}
