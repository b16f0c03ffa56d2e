package service

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/provenance"
)

// UploadView is an upload with short-lived download URLs (ready uploads
// only; a video has no display copy or thumbnail).
type UploadView struct {
	Upload                            model.Upload
	OriginalURL, DisplayURL, ThumbURL string
	URLsExpireAt                      time.Time
}

// Get returns one upload to members of its organization (any status) and
// to reviewers, bureau staff and auditors whose region contains the
// record's town (ready uploads only). Anyone else gets 404.
func (s *Uploads) Get(ctx context.Context, id string) (UploadView, error) {
	u, err := s.visible(ctx, id)
	if err != nil {
		return UploadView{}, err
	}
	return s.view(ctx, u)
}

func (s *Uploads) visible(ctx context.Context, id string) (model.Upload, error) {
	p := PrincipalFrom(ctx)
	u, err := s.c.Uploads.Get(ctx, id)
	if err != nil {
		return model.Upload{}, notFound("文件", err)
	}
	if p.CanOrg(u.OrgID, model.RoleWorker, model.RoleOrgAdmin) {
		return u, nil
	}
	if u.Status != model.UploadReady || u.RecordID == nil {
		return model.Upload{}, notFound("文件", nil)
	}
	rec, err := s.c.Uploads.Record(ctx, *u.RecordID)
	if err != nil {
		return model.Upload{}, notFound("文件", err)
	}
	town, err := s.c.Regions.Get(ctx, rec.TownID)
	if err != nil || !p.CanRegion(town.Path, model.RoleStationReviewer, model.RoleBureauReviewer, model.RoleBureauAdmin, model.RoleAuditor) {
		return model.Upload{}, notFound("文件", err)
	}
	return u, nil
}

func (s *Uploads) view(ctx context.Context, u model.Upload) (UploadView, error) {
	v := UploadView{Upload: u}
	if u.Status != model.UploadReady {
		return v, nil
	}
	v.URLsExpireAt = s.c.Now().Add(mediaURLTTL)
	for _, x := range []struct {
		key string
		dst *string
	}{{u.StorageKey, &v.OriginalURL}, {u.DisplayKey, &v.DisplayURL}, {u.ThumbKey, &v.ThumbURL}} {
		if x.key == "" {
			continue
		}
		url, err := s.c.Objects.SignedGetURL(ctx, x.key, mediaURLTTL)
		if err != nil {
			return UploadView{}, err
		}
		*x.dst = url
	}
	return v, nil
}

// ProvenanceView is a signed provenance record as stored: the payload bytes
// are exactly what was signed.
type ProvenanceView struct {
	Payload   []byte
	Signature []byte
	KeyID     string
}

// Provenance returns the signed record of a ready upload, with the same
// visibility as Get.
func (s *Uploads) Provenance(ctx context.Context, id string) (ProvenanceView, error) {
	u, err := s.visible(ctx, id)
	if err != nil {
		return ProvenanceView{}, err
	}
	if u.Status != model.UploadReady || u.Provenance == "" {
		return ProvenanceView{}, apperr.New(apperr.ErrConflict, "UPLOAD_NOT_READY", "文件还未通过检查，没有来源证明")
	}
	sig, err := base64.StdEncoding.DecodeString(u.ProvenanceSig)
	if err != nil {
		return ProvenanceView{}, fmt.Errorf("uploads: stored signature of %s: %w", u.ID, err)
	}
	return ProvenanceView{Payload: []byte(u.Provenance), Signature: sig, KeyID: u.ProvenanceKey}, nil
}

// PublicKey is the published key that verifies provenance signatures.
func (s *Uploads) PublicKey() (keyID, pem string) {
	return s.c.Signer.KeyID(), provenance.PublicKeyPEM(s.c.Signer.PublicKey())
}

// CleanupOrphans settles uploads that were never completed and removes
// bytes nobody will complete: pending uploads whose ticket expired more than
// orphanGrace before now become expired and lose their incoming object, and
// any object under incoming/ older than a ticket's whole life is deleted (a
// client re-using its PUT URL after completion leaves such objects). It
// reports how many uploads and stray objects it cleaned. A scheduler calls it
// periodically on one replica; each step is safe to repeat or run twice.
func (s *Uploads) CleanupOrphans(ctx context.Context, now time.Time) (int, error) {
	const batch = 500
	n := 0
	rows, err := s.c.Uploads.ExpiredPending(ctx, now.Add(-orphanGrace), batch)
	if err != nil {
		return 0, err
	}
	for _, u := range rows {
		ok, err := s.markExpired(ctx, u, "ticket expired without completion")
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	// Nothing can legitimately be completed from an object PUT longer ago
	// than ticket life + grace, whatever its upload row says.
	cutoff := now.Add(-(UploadTicketTTL + orphanGrace))
	objs, err := s.c.Objects.List(ctx, incomingPrefix, 1000)
	if err != nil {
		return n, err
	}
	var errs []error
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, incomingPrefix) || !o.LastModified.Before(cutoff) {
			continue
		}
		if err := s.c.Objects.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
