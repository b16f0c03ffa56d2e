package service

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
)

// AuditEntry is what a use case says about a change it made.
type AuditEntry struct {
	Action     string
	ObjectType string
	ObjectID   string
	Before     any
	After      any
	Reason     string
	// ActorID overrides the principal (login: nobody is logged in yet).
	ActorID string
}

// Auditor records and reads the audit log.
type Auditor struct {
	store AuditStore
	now   func() time.Time
}

// NewAuditor builds the audit use cases.
func NewAuditor(store AuditStore, now func() time.Time) *Auditor {
	return &Auditor{store: store, now: now}
}

// Record appends an entry; called inside the use case's transaction so the
// change and its audit row commit together.
func (a *Auditor) Record(ctx context.Context, e AuditEntry) error {
	p := PrincipalFrom(ctx)
	meta := RequestMetaFrom(ctx)
	ev := &model.AuditEvent{
		ID: ids.New(), ActorID: e.ActorID, Action: e.Action, ObjectType: e.ObjectType,
		ObjectID: e.ObjectID, Before: toJSON(e.Before), After: toJSON(e.After), Reason: e.Reason,
		RequestID: meta.RequestID, IP: meta.IP, CreatedAt: a.now(),
	}
	if ev.ActorID == "" && p != nil {
		ev.ActorID = p.UserID
	}
	if p != nil {
		if roles := p.Roles(); len(roles) > 0 {
			ev.ActorRole = roles[len(roles)-1]
		}
	}
	if err := a.store.Append(ctx, ev); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

func toJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return string(b)
}

// AuditQuery filters the audit listing.
type AuditQuery struct {
	ActorID, Action, ObjectType, ObjectID string
	From, To                              time.Time
	Cursor                                string
	Limit                                 int
}

// List returns audit events to auditors and bureau admins, newest first.
func (a *Auditor) List(ctx context.Context, q AuditQuery) ([]model.AuditEvent, string, error) {
	if !PrincipalFrom(ctx).HasRole(model.RoleAuditor, model.RoleBureauAdmin) {
		return nil, "", apperr.New(apperr.ErrForbidden, "FORBIDDEN", "无权查看审计日志")
	}
	var before int64
	if q.Cursor != "" {
		if _, err := fmt.Sscan(q.Cursor, &before); err != nil || before <= 0 {
			return nil, "", apperr.Invalid("游标无效", apperr.FieldError{Field: "cursor", Reason: "invalid"})
		}
	}
	rows, err := a.store.List(ctx, repository.AuditFilter{
		ActorID: q.ActorID, Action: q.Action, ObjectType: q.ObjectType, ObjectID: q.ObjectID,
		From: q.From, To: q.To, BeforeSeq: before, Limit: q.Limit + 1,
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		next = fmt.Sprint(rows[len(rows)-1].Seq)
	}
	return rows, next, nil
}

// VerifyResult is the outcome of a chain check.
type VerifyResult struct {
	Checked  int64
	OK       bool
	Problems []repository.ChainProblem
}

// Verify walks the chain. Open to auditors and bureau admins.
func (a *Auditor) Verify(ctx context.Context) (VerifyResult, error) {
	if p := PrincipalFrom(ctx); p != nil && !p.HasRole(model.RoleAuditor, model.RoleBureauAdmin) {
		return VerifyResult{}, apperr.New(apperr.ErrForbidden, "FORBIDDEN", "无权校验审计日志")
	}
	n, probs, err := a.store.Verify(ctx)
	if err != nil {
		return VerifyResult{}, err
	}
	return VerifyResult{Checked: n, OK: len(probs) == 0, Problems: probs}, nil
}
