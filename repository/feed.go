package repository

import (
	"context"

	"gorm.io/gorm/clause"

	"qjmz/model"
)

// Feed is the data side of the public feed: the keyset page over published
// records, the batched lookups that decorate a page, and the few reads and
// writes that decide publication. It reads records, items, regions,
// organizations and uploads through their models: the feed needs a handful
// of narrow, indexed queries on them, not their use cases.
type Feed struct{ s *Store }

// NewFeed builds the feed repository.
func NewFeed(s *Store) *Feed { return &Feed{s: s} }

// FeedFilter selects one page. Before is the FeedKey of the last row of the
// previous page ("" = first page).
type FeedFilter struct {
	TownID, CommunityID, ItemID string
	Before                      string
	Limit                       int
}

// feedColumns are what a feed entry shows: never beneficiary links, never
// the worker, never coordinates.
var feedColumns = []string{"id", "org_id", "item_id", "town_id", "community_id", "venue_name", "start_at", "end_at",
	"title", "description", "participant_count", "status", "text_check", "text_check_hash", "published_at", "feed_key"}

// Page returns up to Limit published records, newest first. Every variant
// is one range scan of an index ending in feed_key: ix_feed alone, or
// ix_feed_comm / ix_feed_town / ix_feed_item after one equality (see
// docs/performance.md for the EXPLAINs). Status is deliberately not a
// predicate here: with it MariaDB may prefer ix_rec_town (town_id, status)
// and sort; the service drops any row that is not approved instead.
func (r *Feed) Page(ctx context.Context, f FeedFilter) ([]model.SessionRecord, error) {
	q := r.s.conn(ctx).Model(&model.SessionRecord{}).Select(feedColumns)
	if f.CommunityID != "" {
		q = q.Where("community_id = ?", f.CommunityID)
	}
	if f.TownID != "" {
		q = q.Where("town_id = ?", f.TownID)
	}
	if f.ItemID != "" {
		q = q.Where("item_id = ?", f.ItemID)
	}
	if f.Before != "" {
		q = q.Where("feed_key > '' AND feed_key < ?", f.Before)
	} else {
		q = q.Where("feed_key > ''")
	}
	var rows []model.SessionRecord
	err := q.Order("feed_key DESC").Limit(f.Limit).Find(&rows).Error
	return rows, translate("feed.page", err)
}

// Published returns one record if it is on the feed.
func (r *Feed) Published(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).Select(feedColumns).
		Where("id = ? AND feed_key > ''", id).Take(&rec).Error
	return rec, translate("feed.published", err)
}

// Items returns the catalogue entries with the given ids.
func (r *Feed) Items(ctx context.Context, ids []string) (map[string]model.ServiceItem, error) {
	out := make(map[string]model.ServiceItem, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []model.ServiceItem
	err := r.s.conn(ctx).Select("id", "code", "name", "category", "visibility").Where("id IN ?", ids).Find(&rows).Error
	for _, it := range rows {
		out[it.ID] = it
	}
	return out, translate("feed.items", err)
}

// RegionNames returns the names of the regions with the given ids.
func (r *Feed) RegionNames(ctx context.Context, ids []string) (map[string]string, error) {
	return r.names(ctx, "feed.region_names", &model.Region{}, ids)
}

// OrgNames returns the names of the organizations with the given ids.
func (r *Feed) OrgNames(ctx context.Context, ids []string) (map[string]string, error) {
	return r.names(ctx, "feed.org_names", &model.Organization{}, ids)
}

func (r *Feed) names(ctx context.Context, op string, m any, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct{ ID, Name string }
	err := r.s.conn(ctx).Model(m).Select("id", "name").Where("id IN ?", ids).Find(&rows).Error
	for _, row := range rows {
		out[row.ID] = row.Name
	}
	return out, translate(op, err)
}

// PublicMedia lists the images of the given records that may be shown:
// cleared by the reviewer and passed by WeChat's content check; in upload
// order. Originals are not even selected.
func (r *Feed) PublicMedia(ctx context.Context, recordIDs []string) ([]model.Upload, error) {
	if len(recordIDs) == 0 {
		return nil, nil
	}
	var rows []model.Upload
	err := r.s.conn(ctx).Select("id", "record_id", "kind", "display_key", "thumb_key").
		Where("record_id IN ? AND status = ? AND kind = ? AND public_ok = ? AND content_check = ?",
			recordIDs, model.UploadReady, model.KindImage, true, "pass").
		Order("seq").Find(&rows).Error
	return rows, translate("feed.public_media", err)
}

// Record reads a record.
func (r *Feed) Record(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	return rec, translate("feed.record", r.s.conn(ctx).Where("id = ?", id).Take(&rec).Error)
}

// LockRecord reads a record FOR UPDATE (SQLite serialises the transaction
// instead).
func (r *Feed) LockRecord(ctx context.Context, id string) (model.SessionRecord, error) {
	var rec model.SessionRecord
	err := r.s.conn(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&rec).Error
	return rec, translate("feed.lock_record", err)
}

// Item reads one catalogue entry.
func (r *Feed) Item(ctx context.Context, id string) (model.ServiceItem, error) {
	var it model.ServiceItem
	return it, translate("feed.item", r.s.conn(ctx).Where("id = ?", id).Take(&it).Error)
}

// PublicImages lists the ready images of a record the reviewer cleared for
// the public, whatever their content check says: publication needs all of
// them to have passed.
func (r *Feed) PublicImages(ctx context.Context, recordID string) ([]model.Upload, error) {
	var rows []model.Upload
	err := r.s.conn(ctx).Select("id", "content_check").
		Where("record_id = ? AND status = ? AND kind = ? AND public_ok = ?", recordID, model.UploadReady, model.KindImage, true).
		Order("seq").Find(&rows).Error
	return rows, translate("feed.public_images", err)
}

// UpdateRecord writes the given columns of a record.
func (r *Feed) UpdateRecord(ctx context.Context, id string, cols map[string]any) error {
	return translate("feed.update_record", r.s.conn(ctx).Model(&model.SessionRecord{}).Where("id = ?", id).Updates(cols).Error)
}

// UploadByTrace finds the upload whose WeChat media check has this trace id.
func (r *Feed) UploadByTrace(ctx context.Context, traceID string) (model.Upload, error) {
	var u model.Upload
	err := r.s.conn(ctx).Select("id", "record_id", "kind", "content_check", "check_trace_id").
		Where("check_trace_id = ?", traceID).Take(&u).Error
	return u, translate("feed.upload_by_trace", err)
}

// SetContentCheck stores WeChat's verdict on an upload still waiting for it
// and reports whether it did: a replayed or late push changes nothing.
func (r *Feed) SetContentCheck(ctx context.Context, uploadID, traceID, verdict string) (bool, error) {
	res := r.s.conn(ctx).Model(&model.Upload{}).
		Where("id = ? AND check_trace_id = ? AND content_check = ?", uploadID, traceID, "pending").
		Update("content_check", verdict)
	return res.RowsAffected == 1, translate("feed.set_content_check", res.Error)
}

// TextCheckTodo lists approved records still waiting for a text check,
// least recently tried first (ix_rec_feed_todo).
func (r *Feed) TextCheckTodo(ctx context.Context, limit int) ([]string, error) {
	var out []string
	err := r.s.conn(ctx).Model(&model.SessionRecord{}).
		Where("status = ? AND text_check IN ? AND feed_hidden_at IS NULL", model.RecordApproved, []string{"", "pending"}).
		Order("updated_at").Limit(limit).Pluck("id", &out).Error
	return out, translate("feed.text_check_todo", err)
}
