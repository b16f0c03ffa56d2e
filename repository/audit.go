package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"qjmz/model"
	"qjmz/pkg/apperr"
)

// GenesisHash is the PrevHash of the first audit event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Audit appends to and reads the hash-chained audit log.
type Audit struct{ s *Store }

// NewAudit builds the audit repository.
func NewAudit(s *Store) *Audit { return &Audit{s: s} }

// Append links e to the chain inside the caller's transaction (or its own).
// The chain head row is locked, so appends are serialised and the chain has
// no forks; the lock is held only until the surrounding commit.
func (r *Audit) Append(ctx context.Context, e *model.AuditEvent) error {
	return r.s.InTx(ctx, func(ctx context.Context) error {
		db := r.s.conn(ctx)
		var head model.AuditHead
		if err := db.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = 1").Take(&head).Error; err != nil {
			return translate("audit.head", err)
		}
		e.Seq = head.Seq + 1
		e.PrevHash = head.Hash
		if e.CreatedAt.IsZero() {
			e.CreatedAt = time.Now().UTC()
		}
		e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Millisecond)
		e.Hash = AuditHash(e)
		if err := db.Create(e).Error; err != nil {
			return translate("audit.insert", err)
		}
		res := db.Model(&model.AuditHead{}).Where("id = 1 AND seq = ?", head.Seq).
			Updates(map[string]any{"seq": e.Seq, "hash": e.Hash})
		if res.Error != nil {
			return translate("audit.advance", res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("audit.advance: %w", apperr.ErrConflict)
		}
		return nil
	})
}

// AuditHash is the chain hash of an event: sha256 over the previous hash and
// a canonical encoding of every field but the hash itself.
func AuditHash(e *model.AuditEvent) string {
	canon, _ := json.Marshal([]any{
		e.Seq, e.ID, e.ActorID, e.ActorRole, e.Action, e.ObjectType, e.ObjectID,
		e.Before, e.After, e.Reason, e.RequestID, e.IP,
		e.CreatedAt.UTC().Format(time.RFC3339Nano),
	})
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditFilter narrows an audit listing.
type AuditFilter struct {
	ActorID    string
	Action     string
	ObjectType string
	ObjectID   string
	From, To   time.Time
	BeforeSeq  int64
	Limit      int
}

// List returns events newest first.
func (r *Audit) List(ctx context.Context, f AuditFilter) ([]model.AuditEvent, error) {
	q := r.s.conn(ctx).Order("seq DESC").Limit(f.Limit)
	if f.ActorID != "" {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ObjectType != "" {
		q = q.Where("object_type = ?", f.ObjectType)
	}
	if f.ObjectID != "" {
		q = q.Where("object_id = ?", f.ObjectID)
	}
	if !f.From.IsZero() {
		q = q.Where("created_at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		q = q.Where("created_at < ?", f.To.UTC())
	}
	if f.BeforeSeq > 0 {
		q = q.Where("seq < ?", f.BeforeSeq)
	}
	var rows []model.AuditEvent
	return rows, translate("audit.list", q.Find(&rows).Error)
}

// ChainProblem is one break found by Verify.
type ChainProblem struct {
	Seq    int64
	Reason string // "hash_mismatch", "prev_mismatch", "missing", "head_mismatch"
}

// Verify walks the whole chain in batches and reports every break: an
// altered row (its hash no longer matches), a deleted row (a gap in seq or a
// broken link) or a truncated tail (the head points past the last row).
func (r *Audit) Verify(ctx context.Context) (checked int64, problems []ChainProblem, err error) {
	db := r.s.conn(ctx)
	prevHash := GenesisHash
	var lastSeq int64
	const batch = 1000
	for {
		var rows []model.AuditEvent
		if err := db.Where("seq > ?", lastSeq).Order("seq").Limit(batch).Find(&rows).Error; err != nil {
			return checked, problems, translate("audit.verify", err)
		}
		for i := range rows {
			e := &rows[i]
			if e.Seq != lastSeq+1 {
				problems = append(problems, ChainProblem{Seq: lastSeq + 1, Reason: "missing"})
			}
			if e.PrevHash != prevHash {
				problems = append(problems, ChainProblem{Seq: e.Seq, Reason: "prev_mismatch"})
			}
			if AuditHash(e) != e.Hash {
				problems = append(problems, ChainProblem{Seq: e.Seq, Reason: "hash_mismatch"})
			}
			prevHash, lastSeq = e.Hash, e.Seq
			checked++
		}
		if len(rows) < batch {
			break
		}
	}
	var head model.AuditHead
	if err := db.Where("id = 1").Take(&head).Error; err != nil {
		return checked, problems, translate("audit.verify_head", err)
	}
	if head.Seq != lastSeq || head.Hash != prevHash {
		problems = append(problems, ChainProblem{Seq: head.Seq, Reason: "head_mismatch"})
	}
	return checked, problems, nil
}
