package service

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"qjmz/model"
	"qjmz/pkg/neardup"
)

// NearDupSource is where the near-duplicate index learns about photos.
type NearDupSource interface {
	// ImageHashesAfter returns image uploads with seq > after in seq order
	// (id, seq, record_id, status, expires_at and the four hashes suffice).
	ImageHashesAfter(ctx context.Context, after int64, limit int) ([]model.Upload, error)
	// UploadsByID loads uploads by id.
	UploadsByID(ctx context.Context, ids []string) (map[string]model.Upload, error)
}

// NearMatch is an earlier photo in another record that looks like one of
// the record's photos.
type NearMatch struct {
	UploadID        string // the record's photo
	MatchedUploadID string
	MatchedRecordID string
	Distance        int // combined pHash+dHash distance of the closer region (0 = identical)
}

// NearDupIndex is the process's one in-memory near-duplicate index over
// every ready photo on the platform. It is filled lazily on the first
// submit and brought up to date before each one from the uploads table, so
// photos completed through other replicas are seen without any messaging
// between replicas. The database stays the source of truth: a restart only
// costs one reload.
type NearDupIndex struct {
	src NearDupSource
	now func() time.Time

	ix *neardup.Index

	mu      sync.Mutex // serialises Sync; guards the fields below
	lastSeq int64
	// pending holds image tickets seen before they were ready, by id, with
	// the time after which they count as abandoned. Seq is assigned when
	// the ticket is created, not when the photo is completed, so a photo
	// completed after a later ticket was indexed would otherwise be missed
	// forever by a "seq > lastSeq" scan.
	pending map[string]time.Time
}

const (
	nearDupBatch = 2000
	// nearDupOverlap re-reads the last few seqs on every sync: an
	// auto-increment value is taken at insert, so a transaction may commit
	// seq n after n+1 was already read. Add is idempotent, so re-reading
	// costs nothing but the rows.
	nearDupOverlap = 256
	// nearDupAbandon: a ticket still pending this long after its expiry
	// will not be completed any more; stop polling it.
	nearDupAbandon = 24 * time.Hour
)

// NewNearDupIndex builds an empty index; the first Sync loads it.
func NewNearDupIndex(src NearDupSource, now func() time.Time) *NearDupIndex {
	return &NearDupIndex{src: src, now: now, ix: neardup.NewIndex(neardup.DefaultRadius), pending: map[string]time.Time{}}
}

// fingerprint turns the stored bit-cast hashes back into a Fingerprint.
func ndFingerprint(u model.Upload) neardup.Fingerprint {
	return neardup.Fingerprint{PHash: uint64(u.PHash), DHash: uint64(u.DHash), TopPHash: uint64(u.TopPHash), TopDHash: uint64(u.TopDHash)}
}

// ndHashed: an upload whose hashes are all zero was never hashed
// (decode failed, or a file that is not a photo); indexing it would match
// every other unhashed row.
func ndHashed(u model.Upload) bool {
	return u.PHash != 0 || u.DHash != 0 || u.TopPHash != 0 || u.TopDHash != 0
}

func (n *NearDupIndex) add(u model.Upload) {
	if !ndHashed(u) {
		return
	}
	for _, k := range ndFingerprint(u).IndexKeys() {
		n.ix.Add(u.ID, k)
	}
}

// Sync reads what is new since the last call: new image uploads by seq, and
// tickets that were pending then and may be ready now.
func (n *NearDupIndex) Sync(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	from := max(0, n.lastSeq-nearDupOverlap)
	for {
		rows, err := n.src.ImageHashesAfter(ctx, from, nearDupBatch)
		if err != nil {
			return err
		}
		for _, u := range rows {
			switch u.Status {
			case model.UploadReady:
				n.add(u)
				delete(n.pending, u.ID)
			case model.UploadPending:
				n.pending[u.ID] = u.ExpiresAt.Add(nearDupAbandon)
			}
			from = u.Seq
		}
		n.lastSeq = max(n.lastSeq, from)
		if len(rows) < nearDupBatch {
			break
		}
	}
	return n.recheckPending(ctx)
}

func (n *NearDupIndex) recheckPending(ctx context.Context) error {
	if len(n.pending) == 0 {
		return nil
	}
	now := n.now()
	idsToCheck := make([]string, 0, len(n.pending))
	for id, giveUp := range n.pending {
		if now.After(giveUp) {
			delete(n.pending, id)
			continue
		}
		idsToCheck = append(idsToCheck, id)
	}
	for len(idsToCheck) > 0 {
		batch := idsToCheck[:min(len(idsToCheck), 500)]
		idsToCheck = idsToCheck[len(batch):]
		rows, err := n.src.UploadsByID(ctx, batch)
		if err != nil {
			return err
		}
		for _, id := range batch {
			u, ok := rows[id]
			switch {
			case !ok:
				delete(n.pending, id)
			case u.Status == model.UploadReady:
				n.add(u)
				delete(n.pending, id)
			case u.Status != model.UploadPending:
				delete(n.pending, id)
			}
		}
	}
	return nil
}

// Len reports how many hashes the index holds (two per photo).
func (n *NearDupIndex) Len() int { return n.ix.Len() }

// Find returns, for each of the record's photos, the photos in other
// records that the neardup decision rule calls near-duplicates, closest
// first. Matches inside the same record are ignored: burst shots of one
// session look alike by design. Photos not yet attached to any record are
// ignored too — the question is whether evidence is being reused.
func (n *NearDupIndex) Find(ctx context.Context, recordID string, photos []model.Upload) ([]NearMatch, error) {
	cands := map[string][]string{} // photo id → candidate upload ids
	var all []string
	seen := map[string]bool{}
	for _, p := range photos {
		if !ndHashed(p) {
			continue
		}
		var mine []string
		got := map[string]bool{}
		for _, k := range ndFingerprint(p).IndexKeys() {
			for _, m := range n.ix.Search(k, neardup.DefaultRadius) {
				if m.Ref == p.ID || got[m.Ref] {
					continue
				}
				got[m.Ref] = true
				mine = append(mine, m.Ref)
				if !seen[m.Ref] {
					seen[m.Ref] = true
					all = append(all, m.Ref)
				}
			}
		}
		cands[p.ID] = mine
	}
	if len(all) == 0 {
		return nil, nil
	}
	// The index only gathers candidates: their stored fingerprints confirm
	// them, and their current record (attached after indexing, perhaps)
	// comes from the database.
	rows, err := n.src.UploadsByID(ctx, all)
	if err != nil {
		return nil, err
	}
	var out []NearMatch
	for _, p := range photos {
		fp := ndFingerprint(p)
		var best []NearMatch
		for _, id := range cands[p.ID] {
			c, ok := rows[id]
			if !ok || c.RecordID == nil || *c.RecordID == recordID {
				continue
			}
			if near, d := fp.Near(ndFingerprint(c)); near {
				best = append(best, NearMatch{UploadID: p.ID, MatchedUploadID: c.ID, MatchedRecordID: *c.RecordID, Distance: d})
			}
		}
		sortNear(best)
		out = append(out, best...)
	}
	return out, nil
}

func sortNear(ms []NearMatch) {
	slices.SortFunc(ms, func(a, b NearMatch) int {
		if a.Distance != b.Distance {
			return a.Distance - b.Distance
		}
		return strings.Compare(a.MatchedUploadID, b.MatchedUploadID)
	})
}
