// Package neardup finds earlier photos that look like a new one, so that a
// photo already used as evidence for one service record cannot quietly be
// reused for another.
//
// It has two halves. Compute reduces a decoded image to a Fingerprint of
// perceptual hashes, and Fingerprint.Near is the decision rule. Index stores
// 64-bit hashes under refs and answers "every stored hash within Hamming
// distance r of this one" exactly — the same answer as LinearScan — in well
// under a millisecond at a million hashes, using multi-index hashing.
//
// The app adds a photo's Fingerprint.IndexKeys to one Index, searches both
// with DefaultRadius, and confirms each candidate with Near against the
// stored fingerprint; see docs/neardup.md for the measured recall,
// false-positive rate and latency.
package neardup

import (
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// Ref names a stored photo. The app uses the media row's ULID; the index
// treats it as opaque.
type Ref = string

// Match is one stored photo whose hash lies within the search radius.
type Match struct {
	Ref      Ref
	Hash     uint64
	Distance int
}

// bucket holds the entries whose chunk has one value. Full hashes sit in
// their own contiguous slice so a probe verifies candidates with sequential
// reads, 8 bytes each, instead of chasing ids into a separate array — at a
// million entries that is the difference between streaming and one cache
// miss per candidate. ids are read only for real matches. Neither slice
// holds pointers, so the garbage collector never scans the tables.
type bucket struct {
	hashes []uint64
	ids    []uint32
}

// chunk is one slice of the 64-bit hash used as a table key.
type chunk struct {
	shift uint
	width uint
	mask  uint64 // the chunk's bits in place, for distance checks on full hashes
	// masksByPop holds every width-bit value ordered by popcount and
	// popPrefix[k] counts those with popcount <= k, so the keys within k
	// bits of a chunk value q are q ^ masksByPop[:popPrefix[k]].
	masksByPop []uint32
	popPrefix  []int
}

// Index is an exact Hamming-radius index over 64-bit hashes: multi-index
// hashing (Norouzi, Punjani & Fleet, 2012). The hash is cut into m chunks,
// each with its own table from chunk value to entries. If two hashes differ
// in at most r bits, the pigeonhole principle puts some chunk within
// floor(r/m) bits, so probing every key near each query chunk and verifying
// the full distance finds every match and nothing else.
//
// Index is safe for concurrent use: searches share a read lock and writes
// take the write lock.
type Index struct {
	mu     sync.RWMutex
	chunks []chunk
	tables [][]bucket // tables[c][key] is the bucket of chunk c
	refs   []Ref      // by id
	free   []uint32   // ids of removed entries, reused by Add
	n      int
}

// NewIndex returns an empty index tuned for searches up to maxRadius bits.
// Searches with a larger radius still return exact answers, only slower.
func NewIndex(maxRadius int) *Index {
	return newIndexChunks(chunkCount(maxRadius))
}

func newIndexChunks(m int) *Index {
	ix := &Index{}
	masks := make(map[uint]chunk) // chunks of equal width share their masks
	// Spread the 64 bits as evenly as possible: wider chunks come first.
	shift := uint(0)
	for c := range m {
		w := uint(64 / m)
		if c < 64%m {
			w++
		}
		ch, ok := masks[w]
		if !ok {
			ch.masksByPop, ch.popPrefix = masksOrderedByPopcount(w)
			masks[w] = ch
		}
		ch.shift, ch.width, ch.mask = shift, w, (1<<w-1)<<shift
		ix.chunks = append(ix.chunks, ch)
		ix.tables = append(ix.tables, make([]bucket, 1<<w))
		shift += w
	}
	return ix
}

// chunkCount picks m. Measured over a million random hashes on the 2-core
// target (docs/neardup.md), six chunks of 10–11 bits beat four of 16 by 2–3×
// at radius 10–14: each probe scans a bucket of ~500 hashes sequentially,
// which is cheap, while four chunks need thousands of probes, each a cache
// miss. Wider radii need more chunks to keep the probe count down.
func chunkCount(maxRadius int) int {
	return min(max(6, (maxRadius+3)/3), 8)
}

func masksOrderedByPopcount(w uint) ([]uint32, []int) {
	masks := make([]uint32, 0, 1<<w)
	prefix := make([]int, w+1)
	for k := 0; k <= int(w); k++ {
		for v := uint32(0); v < 1<<w; v++ {
			if bits.OnesCount32(v) == k {
				masks = append(masks, v)
			}
		}
		prefix[k] = len(masks)
	}
	return masks, prefix
}

func (c chunk) key(h uint64) uint32 { return uint32(h>>c.shift) & (1<<c.width - 1) }

// Len reports how many (ref, hash) pairs the index holds.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Add stores h under ref. Adding the same pair again is a no-op, so a
// retried upload or a rebuild that overlaps live inserts cannot produce
// phantom duplicate matches. One ref may carry several hashes.
func (ix *Index) Add(ref Ref, h uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if _, ok := ix.find(ref, h); ok {
		return
	}
	var id uint32
	if n := len(ix.free); n > 0 {
		id = ix.free[n-1]
		ix.free = ix.free[:n-1]
		ix.refs[id] = ref
	} else {
		id = uint32(len(ix.refs))
		ix.refs = append(ix.refs, ref)
	}
	for c, ch := range ix.chunks {
		b := &ix.tables[c][ch.key(h)]
		b.hashes = append(b.hashes, h)
		b.ids = append(b.ids, id)
	}
	ix.n++
}

// Remove deletes the pair (ref, h) if present; it is a no-op otherwise.
func (ix *Index) Remove(ref Ref, h uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	id, ok := ix.find(ref, h)
	if !ok {
		return
	}
	for c, ch := range ix.chunks {
		b := &ix.tables[c][ch.key(h)]
		i := slices.Index(b.ids, id)
		last := len(b.ids) - 1
		b.hashes[i], b.ids[i] = b.hashes[last], b.ids[last]
		b.hashes, b.ids = b.hashes[:last], b.ids[:last]
		if last == 0 {
			*b = bucket{} // let an emptied bucket's arrays go
		}
	}
	ix.refs[id] = ""
	ix.free = append(ix.free, id)
	ix.n--
}

// find returns the id of (ref, h); the caller holds the lock.
func (ix *Index) find(ref Ref, h uint64) (uint32, bool) {
	b := &ix.tables[0][ix.chunks[0].key(h)]
	for i, x := range b.hashes {
		if x == h && ix.refs[b.ids[i]] == ref {
			return b.ids[i], true
		}
	}
	return 0, false
}

// Search returns every stored pair whose hash is within radius bits of h,
// sorted by distance and then by ref. It returns exactly what LinearScan
// returns over the same pairs. A negative radius matches nothing.
func (ix *Index) Search(h uint64, radius int) []Match {
	if radius < 0 {
		return nil
	}
	radius = min(radius, 64)
	ix.mu.RLock()
	defer ix.mu.RUnlock()

	var out []Match
	probeRadius := ix.probeRadii(radius)
	if ix.probeCost(probeRadius) >= len(ix.tables[0]) {
		// Past this point enumerating neighbour keys visits more buckets
		// than scanning all of table 0, which holds every entry once.
		for i := range ix.tables[0] {
			out = ix.collect(out, &ix.tables[0][i], h, radius)
		}
		sortMatches(out)
		return out
	}
	for c, ch := range ix.chunks {
		pr := probeRadius[c]
		if pr < 0 {
			continue
		}
		q := ch.key(h)
		table := ix.tables[c]
		for _, mask := range ch.masksByPop[:ch.popPrefix[pr]] {
			b := &table[q^mask]
			for i, x := range b.hashes {
				d := bits.OnesCount64(x ^ h)
				if d > radius || ix.foundInEarlierChunk(c, x^h, probeRadius) {
					continue
				}
				out = append(out, Match{Ref: ix.refs[b.ids[i]], Hash: x, Distance: d})
			}
		}
	}
	sortMatches(out)
	return out
}

// probeRadii uses the refined pigeonhole bound: with r = s*m + a, a hash
// within r has one of the first a+1 chunks within s bits or one of the rest
// within s-1 (otherwise the chunk distances sum to at least r+1). That
// probes far fewer keys than searching every chunk at s.
func (ix *Index) probeRadii(r int) []int {
	m := len(ix.chunks)
	s, a := r/m, r%m
	pr := make([]int, m)
	for c := range pr {
		p := s
		if c > a {
			p = s - 1
		}
		pr[c] = min(p, int(ix.chunks[c].width))
	}
	return pr
}

func (ix *Index) probeCost(probeRadius []int) int {
	cost := 0
	for c, ch := range ix.chunks {
		if probeRadius[c] >= 0 {
			cost += ch.popPrefix[probeRadius[c]]
		}
	}
	return cost
}

// foundInEarlierChunk reports whether an earlier chunk's probe already
// reached this entry, which deduplicates results without a visited set.
func (ix *Index) foundInEarlierChunk(c int, diff uint64, probeRadius []int) bool {
	for j := range c {
		if bits.OnesCount64(diff&ix.chunks[j].mask) <= probeRadius[j] {
			return true
		}
	}
	return false
}

func (ix *Index) collect(out []Match, b *bucket, h uint64, radius int) []Match {
	for i, x := range b.hashes {
		if d := bits.OnesCount64(x ^ h); d <= radius {
			out = append(out, Match{Ref: ix.refs[b.ids[i]], Hash: x, Distance: d})
		}
	}
	return out
}

// LinearScan is the reference answer: it compares h with every hash.
// refs[i] names hashes[i]; the slices must have the same length. It is what
// Index must agree with, and the baseline its benchmark is measured against.
func LinearScan(hashes []uint64, refs []Ref, h uint64, radius int) []Match {
	if len(hashes) != len(refs) {
		panic("neardup: LinearScan needs one ref per hash")
	}
	var out []Match
	for i, x := range hashes {
		if d := bits.OnesCount64(x ^ h); d <= radius {
			out = append(out, Match{Ref: refs[i], Hash: x, Distance: d})
		}
	}
	sortMatches(out)
	return out
}

func sortMatches(ms []Match) {
	slices.SortFunc(ms, func(a, b Match) int {
		if a.Distance != b.Distance {
			return a.Distance - b.Distance
		}
		if c := strings.Compare(a.Ref, b.Ref); c != 0 {
			return c
		}
		// A ref may carry several hashes; keep the order total.
		switch {
		case a.Hash < b.Hash:
			return -1
		case a.Hash > b.Hash:
			return 1
		}
		return 0
	})
}
