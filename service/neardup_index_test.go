package service

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"qjmz/model"
)

// fakeUploads is an uploads table in memory.
type fakeUploads struct {
	mu   sync.Mutex
	rows []model.Upload
}

func (f *fakeUploads) put(u model.Upload) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rows {
		if f.rows[i].ID == u.ID {
			f.rows[i] = u
			return
		}
	}
	f.rows = append(f.rows, u)
	sort.Slice(f.rows, func(i, j int) bool { return f.rows[i].Seq < f.rows[j].Seq })
}

func (f *fakeUploads) ImageHashesAfter(_ context.Context, after int64, limit int) ([]model.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Upload
	for _, u := range f.rows {
		if u.Seq > after && u.Kind == model.KindImage && len(out) < limit {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeUploads) UploadsByID(_ context.Context, ids []string) (map[string]model.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]model.Upload{}
	for _, u := range f.rows {
		for _, id := range ids {
			if u.ID == id {
				out[id] = u
			}
		}
	}
	return out, nil
}

func flipBits(h int64, n int, r *rand.Rand) int64 {
	for _, b := range r.Perm(64)[:n] {
		h ^= 1 << b
	}
	return h
}

func TestNearDupIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := model.Upload{PHash: int64(r.Uint64()), DHash: int64(r.Uint64()), TopPHash: int64(r.Uint64()), TopDHash: int64(r.Uint64())}
	img := func(id string, seq int64, rec *string, status string, like model.Upload) model.Upload {
		like.ID, like.Seq, like.RecordID, like.Status, like.Kind = id, seq, rec, status, model.KindImage
		like.ExpiresAt = time.Now().Add(time.Hour)
		return like
	}
	near := base
	near.PHash, near.DHash = flipBits(base.PHash, 5, r), flipBits(base.DHash, 4, r) // combined 9 ≤ 22
	near.TopPHash, near.TopDHash = flipBits(base.TopPHash, 6, r), flipBits(base.TopDHash, 6, r)
	far := model.Upload{PHash: int64(r.Uint64()), DHash: int64(r.Uint64()), TopPHash: int64(r.Uint64()), TopDHash: int64(r.Uint64())}
	// Within the search radius on pHash but too far on dHash: the index
	// gathers it, Near must turn it down.
	lookalike := base
	lookalike.PHash, lookalike.DHash = flipBits(base.PHash, 12, r), flipBits(base.DHash, 20, r)
	lookalike.TopPHash, lookalike.TopDHash = flipBits(base.TopPHash, 30, r), flipBits(base.TopDHash, 30, r)

	recA, recB, recC := riskPtr("REC_A"), riskPtr("REC_B"), riskPtr("REC_C")
	src := &fakeUploads{}
	src.put(img("EARLIER", 1, recA, model.UploadReady, base))
	src.put(img("FAR", 2, recA, model.UploadReady, far))
	src.put(img("LOOKALIKE", 3, recA, model.UploadReady, lookalike))
	src.put(img("BURST", 4, recB, model.UploadReady, base))            // same record as the query photo
	src.put(img("LOOSE", 5, nil, model.UploadReady, base))             // not evidence of any record
	src.put(img("LATE", 6, recC, model.UploadPending, model.Upload{})) // ticket taken, photo not yet done
	src.put(img("NEWER", 7, recA, model.UploadReady, far))

	ix := NewNearDupIndex(src, time.Now)
	ctx := context.Background()
	if err := ix.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ix.Len(); got != 2*6 {
		t.Fatalf("index holds %d hashes, want 12 (6 ready photos × 2 keys)", got)
	}
	query := img("MINE", 8, recB, model.UploadReady, near)

	t.Run("finds the near photo in another record only", func(t *testing.T) {
		ms, err := ix.Find(ctx, "REC_B", []model.Upload{query})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].MatchedUploadID != "EARLIER" || ms[0].MatchedRecordID != "REC_A" || ms[0].UploadID != "MINE" {
			t.Fatalf("matches %+v, want only EARLIER in REC_A", ms)
		}
		if ms[0].Distance != 9 {
			t.Fatalf("distance %d, want 9", ms[0].Distance)
		}
	})

	t.Run("a photo completed after a later ticket was indexed is still found", func(t *testing.T) {
		late := img("LATE", 6, recC, model.UploadReady, base)
		src.put(late)
		if err := ix.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		ms, err := ix.Find(ctx, "REC_B", []model.Upload{query})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.MatchedUploadID)
		}
		if len(got) != 2 || got[0] != "EARLIER" && got[1] != "EARLIER" || got[0] != "LATE" && got[1] != "LATE" {
			t.Fatalf("matches %v, want EARLIER and LATE", got)
		}
	})

	t.Run("unhashed photos are neither indexed nor searched", func(t *testing.T) {
		src.put(img("BLANK", 9, recC, model.UploadReady, model.Upload{}))
		before := ix.Len()
		if err := ix.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if ix.Len() != before {
			t.Fatalf("unhashed photo indexed")
		}
		ms, _ := ix.Find(ctx, "REC_B", []model.Upload{img("Q", 10, recB, model.UploadReady, model.Upload{})})
		if len(ms) != 0 {
			t.Fatalf("unhashed query matched %v", ms)
		}
	})

	t.Run("concurrent syncs and finds are safe", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src.put(img("C"+string(rune('A'+i)), int64(20+i), recC, model.UploadReady, far))
				if err := ix.Sync(ctx); err != nil {
					t.Error(err)
				}
				if _, err := ix.Find(ctx, "REC_B", []model.Upload{query}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := ix.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := ix.Len(); got != 2*(7+8) {
			t.Fatalf("index holds %d hashes, want %d", got, 2*15)
		}
	})
}
