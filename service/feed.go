package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/pkg/wechat"
	"qjmz/repository"
)

// FeedStore is what the public feed needs from the data layer.
type FeedStore interface {
	Page(ctx context.Context, f repository.FeedFilter) ([]model.SessionRecord, error)
	Published(ctx context.Context, id string) (model.SessionRecord, error)
	Items(ctx context.Context, ids []string) (map[string]model.ServiceItem, error)
	RegionNames(ctx context.Context, ids []string) (map[string]string, error)
	OrgNames(ctx context.Context, ids []string) (map[string]string, error)
	PublicMedia(ctx context.Context, recordIDs []string) ([]model.Upload, error)
	Record(ctx context.Context, id string) (model.SessionRecord, error)
	LockRecord(ctx context.Context, id string) (model.SessionRecord, error)
	Item(ctx context.Context, id string) (model.ServiceItem, error)
	PublicImages(ctx context.Context, recordID string) ([]model.Upload, error)
	UpdateRecord(ctx context.Context, id string, cols map[string]any) error
	UploadByTrace(ctx context.Context, traceID string) (model.Upload, error)
	SetContentCheck(ctx context.Context, uploadID, traceID, verdict string) (bool, error)
	TextCheckTodo(ctx context.Context, limit int) ([]string, error)
}

// PageCache caches rendered pages (repository.FeedCache). A nil PageCache
// means no caching.
type PageCache interface {
	Lookup(ctx context.Context, name string) (val []byte, gen string, ok bool)
	Store(ctx context.Context, gen, name string, val []byte)
	Invalidate(ctx context.Context)
}

// TextChecker is WeChat's msgSecCheck.
type TextChecker interface {
	MsgSecCheck(ctx context.Context, openID string, scene int, content string) (wechat.Verdict, error)
}

// PushVerifier checks the signature of a WeChat push callback.
type PushVerifier interface {
	VerifyPush(timestamp, nonce, signature string) bool
}

// URLSigner hands out expiring GET URLs of stored objects.
type URLSigner interface {
	SignedGetURL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// FeedConfig wires the public feed.
type FeedConfig struct {
	Tx      TxRunner
	Store   FeedStore
	Cache   PageCache
	Regions RegionStore
	Users   UserStore
	Checker TextChecker
	Push    PushVerifier
	Objects URLSigner
	Audit   *Auditor
	// AppID, when set, is the only mini-program whose pushes are accepted.
	AppID  string
	Now    func() time.Time
	Logger *slog.Logger
}

// Feed is the public feed: what residents see, and the rules that decide
// which approved records they may see (docs/feed.md).
type Feed struct {
	c      FeedConfig
	flight flightGroup
}

// NewFeed builds the feed use cases.
func NewFeed(c FeedConfig) *Feed {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Feed{c: c}
}

// Text-check states of a record (SessionRecord.TextCheck).
const (
	TextCheckPending = "pending" // not checked yet, or the check failed: the job retries
	TextCheckPass    = "pass"
	TextCheckReview  = "review"
	TextCheckRisky   = "risky"
	// TextCheckSkipped: approved while its item was internal. Such a record
	// never goes public by itself, even if the item is made public later;
	// a bureau admin's republish checks it.
	TextCheckSkipped = "skipped"
)

// Why a record is not on the feed (FeedState.BlockedBy).
const (
	BlockNotApproved     = "NOT_APPROVED"
	BlockItemInternal    = "ITEM_INTERNAL"
	BlockHidden          = "HIDDEN_BY_ADMIN"
	BlockTextPending     = "TEXT_CHECK_PENDING"
	BlockTextReview      = "TEXT_CHECK_REVIEW"
	BlockTextRisky       = "TEXT_CHECK_RISKY"
	BlockTextSkipped     = "TEXT_CHECK_SKIPPED"
	BlockImagePending    = "IMAGE_CHECK_PENDING"
	BlockImageNotPassed  = "IMAGE_CHECK_FAILED"
	feedDefaultLimit     = 20
	feedMaxLimit         = 50
	feedMediaURLBucket   = time.Hour
	pushMaxSkew          = 5 * time.Minute
	textCheckBatch       = 100
	feedCursorPattern    = `^[0-9]{13}-[0-9A-Za-z]{26}$`
	feedSystemActor      = "system"
	feedTextCheckScene   = wechat.SceneForum
	feedTextCheckMaxRune = 2500
)

// FeedLimits are the page-size default and cap (the api layer enforces the
// cap with LIMIT_OUT_OF_RANGE).
func FeedLimits() (def, capLimit int) { return feedDefaultLimit, feedMaxLimit }

var feedCursorRe = regexp.MustCompile(feedCursorPattern)

// ---- reading ----

// FeedQuery selects a page.
type FeedQuery struct {
	TownID, CommunityID, ItemID string
	Cursor                      string
	Limit                       int
}

// FeedRef is a named reference (region, item, organization).
type FeedRef struct {
	ID, Code, Name, Category string
}

// FeedMedia is one public image: the watermarked display copy and its
// thumbnail, never the original.
type FeedMedia struct {
	Kind, ThumbURL, DisplayURL string
}

// FeedEntry is one published session as residents see it. It has no field
// for beneficiaries or workers: they cannot leak by mapping mistakes.
type FeedEntry struct {
	ID, Title, Description string
	Item                   FeedRef
	Town, Community        FeedRef
	VenueName              string
	StartAt, EndAt         time.Time
	ParticipantCount       int
	OrgName                string
	Media                  []FeedMedia
	PublishedAt            time.Time
}

// FeedPage is one page of the feed.
type FeedPage struct {
	Items []FeedEntry
	Next  string
}

// Render turns a FeedPage or a FeedEntry into the bytes a client receives.
// The api layer supplies it, so the DTOs stay there, and the cache keeps
// its output: a cached page is served as stored, without decoding and
// re-encoding it (measured in docs/performance.md).
type Render func(v any) ([]byte, error)

// List returns a page of the public feed, newest first, rendered. Pages
// come from the cache when they can and from the database otherwise.
func (f *Feed) List(ctx context.Context, q FeedQuery, render Render) ([]byte, error) {
	if q.Limit <= 0 {
		q.Limit = feedDefaultLimit
	}
	if q.Limit > feedMaxLimit {
		return nil, apperr.New(apperr.ErrInvalid, "LIMIT_OUT_OF_RANGE", "每页条数须在1到"+strconv.Itoa(feedMaxLimit)+"之间")
	}
	for field, v := range map[string]string{"town_id": q.TownID, "community_id": q.CommunityID, "item_id": q.ItemID} {
		if v != "" && !ids.Valid(v) {
			return nil, apperr.New(apperr.ErrInvalid, "FEED_FILTER_INVALID", "筛选条件不正确").
				WithFields(apperr.FieldError{Field: field, Reason: "ulid"})
		}
	}
	if q.Cursor != "" && !feedCursorRe.MatchString(q.Cursor) {
		return nil, apperr.New(apperr.ErrInvalid, "CURSOR_INVALID", "翻页参数无效，请从第一页开始").
			WithFields(apperr.FieldError{Field: "cursor", Reason: "invalid"})
	}
	name := "list:" + q.TownID + ":" + q.CommunityID + ":" + q.ItemID + ":" + q.Cursor + ":" + strconv.Itoa(q.Limit)
	return f.cached(ctx, name, render, func(ctx context.Context) (any, error) {
		rows, err := f.c.Store.Page(ctx, repository.FeedFilter{TownID: q.TownID, CommunityID: q.CommunityID,
			ItemID: q.ItemID, Before: q.Cursor, Limit: q.Limit + 1})
		if err != nil {
			return nil, err
		}
		next := ""
		if len(rows) > q.Limit {
			rows = rows[:q.Limit]
			next = rows[len(rows)-1].FeedKey
		}
		entries, err := f.decorate(ctx, rows)
		if err != nil {
			return nil, err
		}
		return FeedPage{Items: entries, Next: next}, nil
	})
}

// Get returns one published record, rendered; anything else (unknown, not
// approved, internal, taken down) is the same 404.
func (f *Feed) Get(ctx context.Context, id string, render Render) ([]byte, error) {
	return f.cached(ctx, "rec:"+id, render, func(ctx context.Context) (any, error) {
		rec, err := f.c.Store.Published(ctx, id)
		if err != nil {
			return nil, notFound("动态", err)
		}
		entries, err := f.decorate(ctx, []model.SessionRecord{rec})
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, apperr.NotFound("动态")
		}
		return entries[0], nil
	})
}

// cached serves name from the cache, or computes and renders it once per
// replica even when many requests miss together (after an invalidation
// every request for a hot page misses at the same moment), and stores it.
// The rendered bytes are what is cached: after a deploy that changes the
// DTOs, pages of the old shape live at most one TTL (60 s).
func (f *Feed) cached(ctx context.Context, name string, render Render, compute func(ctx context.Context) (any, error)) ([]byte, error) {
	var gen string
	if f.c.Cache != nil {
		var raw []byte
		var ok bool
		if raw, gen, ok = f.c.Cache.Lookup(ctx, name); ok {
			return raw, nil
		}
	}
	return f.flight.do(ctx, gen+"|"+name, func(ctx context.Context) ([]byte, error) {
		v, err := compute(ctx)
		if err != nil {
			return nil, err
		}
		b, err := render(v)
		if err != nil {
			return nil, err
		}
		if f.c.Cache != nil {
			f.c.Cache.Store(ctx, gen, name, b)
		}
		return b, nil
	})
}

// decorate turns records into entries with four batched lookups (items,
// regions, organizations, media), whatever the page size. It fails closed:
// a row that is not approved, whose item is not public (any more), or whose
// text is not the text WeChat passed, is dropped even though it carries a
// feed key.
func (f *Feed) decorate(ctx context.Context, rows []model.SessionRecord) ([]FeedEntry, error) {
	if len(rows) == 0 {
		return []FeedEntry{}, nil
	}
	var itemIDs, regionIDs, orgIDs, recIDs []string
	for _, r := range rows {
		itemIDs = appendUnique(itemIDs, r.ItemID)
		regionIDs = appendUnique(appendUnique(regionIDs, r.TownID), r.CommunityID)
		orgIDs = appendUnique(orgIDs, r.OrgID)
		recIDs = append(recIDs, r.ID)
	}
	items, err := f.c.Store.Items(ctx, itemIDs)
	if err != nil {
		return nil, err
	}
	regions, err := f.c.Store.RegionNames(ctx, regionIDs)
	if err != nil {
		return nil, err
	}
	orgs, err := f.c.Store.OrgNames(ctx, orgIDs)
	if err != nil {
		return nil, err
	}
	media, err := f.c.Store.PublicMedia(ctx, recIDs)
	if err != nil {
		return nil, err
	}
	byRecord := map[string][]FeedMedia{}
	ttl := f.mediaURLTTL()
	for _, u := range media {
		if u.RecordID == nil || u.DisplayKey == "" || u.ThumbKey == "" {
			continue
		}
		display, err := f.c.Objects.SignedGetURL(ctx, u.DisplayKey, ttl)
		if err != nil {
			return nil, err
		}
		thumb, err := f.c.Objects.SignedGetURL(ctx, u.ThumbKey, ttl)
		if err != nil {
			return nil, err
		}
		byRecord[*u.RecordID] = append(byRecord[*u.RecordID], FeedMedia{Kind: u.Kind, ThumbURL: thumb, DisplayURL: display})
	}
	out := make([]FeedEntry, 0, len(rows))
	for _, r := range rows {
		it, ok := items[r.ItemID]
		if !ok || it.Visibility != model.VisibilityPublic || r.Status != model.RecordApproved || r.PublishedAt == nil ||
			r.TextCheck != TextCheckPass || r.TextCheckHash != FeedTextHash(r) {
			continue
		}
		m := byRecord[r.ID]
		if m == nil {
			m = []FeedMedia{}
		}
		out = append(out, FeedEntry{
			ID: r.ID, Title: r.Title, Description: r.Description,
			Item:      FeedRef{ID: it.ID, Code: it.Code, Name: it.Name, Category: it.Category},
			Town:      FeedRef{ID: r.TownID, Name: regions[r.TownID]},
			Community: FeedRef{ID: r.CommunityID, Name: regions[r.CommunityID]},
			VenueName: r.VenueName, StartAt: r.StartAt, EndAt: r.EndAt, ParticipantCount: r.ParticipantCount,
			OrgName: orgs[r.OrgID], Media: m, PublishedAt: *r.PublishedAt,
		})
	}
	return out, nil
}

// mediaURLTTL makes signed URLs expire at the end of the next whole hour,
// so a URL stays the same for an hour (clients and CDNs can cache the
// image) and always has at least an hour to live, far longer than a page
// stays cached.
func (f *Feed) mediaURLTTL() time.Duration {
	now := f.c.Now()
	return now.Truncate(feedMediaURLBucket).Add(2 * feedMediaURLBucket).Sub(now)
}

func appendUnique(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// ---- publication ----

// FeedState is where a record stands with respect to the feed.
type FeedState struct {
	RecordID    string
	Published   bool
	PublishedAt *time.Time
	HiddenAt    *time.Time
	BlockedBy   []string
}

// TryPublish puts an approved record on the feed or takes it off, by the
// rules in docs/feed.md; the review slice calls it after a final approval.
// The WeChat text check runs outside any transaction; when it fails the
// record stays unpublished and the feed-recheck job tries again.
func (f *Feed) TryPublish(ctx context.Context, recordID string) error {
	_, err := f.evaluate(ctx, recordID)
	return err
}

func (f *Feed) evaluate(ctx context.Context, id string) (FeedState, error) {
	rec, err := f.c.Store.Record(ctx, id)
	if err != nil {
		return FeedState{}, notFound("记录", err)
	}
	item, err := f.c.Store.Item(ctx, rec.ItemID)
	if err != nil {
		return FeedState{}, err
	}
	var verdict, checkedHash string
	if rec.Status == model.RecordApproved && item.Visibility == model.VisibilityPublic && rec.FeedHiddenAt == nil && needsTextCheck(rec) {
		checkedHash = FeedTextHash(rec)
		verdict = f.checkText(ctx, rec)
	}

	var st FeedState
	changed := false
	err = f.c.Tx.InTx(ctx, func(ctx context.Context) error {
		rec, err := f.c.Store.LockRecord(ctx, id)
		if err != nil {
			return err
		}
		item, err := f.c.Store.Item(ctx, rec.ItemID)
		if err != nil {
			return err
		}
		cols := map[string]any{}
		// The verdict counts only for the text it was given.
		if verdict != "" && FeedTextHash(rec) == checkedHash {
			rec.TextCheck, rec.TextCheckHash = verdict, checkedHash
			cols["text_check"], cols["text_check_hash"] = verdict, checkedHash
		}
		if rec.Status == model.RecordApproved && item.Visibility != model.VisibilityPublic && rec.TextCheck == "" {
			rec.TextCheck = TextCheckSkipped
			cols["text_check"] = TextCheckSkipped
		}
		imgs, err := f.c.Store.PublicImages(ctx, id)
		if err != nil {
			return err
		}
		blocked := feedBlockers(rec, item, imgs)
		now := f.c.Now()
		switch {
		case len(blocked) == 0 && rec.FeedKey == "":
			key := FeedKey(now, rec.ID)
			cols["published_at"], cols["feed_key"] = now, key
			if err := f.c.Audit.Record(ctx, AuditEntry{Action: "feed.publish", ObjectType: "session_record", ObjectID: id,
				ActorID: feedActor(ctx), After: map[string]any{"feed_key": key, "published_at": now}}); err != nil {
				return err
			}
			rec.PublishedAt, rec.FeedKey, changed = &now, key, true
		case len(blocked) > 0 && rec.FeedKey != "":
			cols["published_at"], cols["feed_key"] = nil, ""
			if err := f.c.Audit.Record(ctx, AuditEntry{Action: "feed.unpublish", ObjectType: "session_record", ObjectID: id,
				ActorID: feedActor(ctx), Reason: strings.Join(blocked, ","),
				Before: map[string]any{"feed_key": rec.FeedKey, "published_at": rec.PublishedAt}}); err != nil {
				return err
			}
			rec.PublishedAt, rec.FeedKey, changed = nil, "", true
		}
		if len(cols) > 0 {
			if err := f.c.Store.UpdateRecord(ctx, id, cols); err != nil {
				return err
			}
			changed = true // a new verdict can change what a cached page may show
		}
		st = FeedState{RecordID: id, Published: rec.FeedKey != "", PublishedAt: rec.PublishedAt, HiddenAt: rec.FeedHiddenAt, BlockedBy: blocked}
		return nil
	})
	if err != nil {
		return FeedState{}, err
	}
	if changed {
		f.invalidate(ctx)
	}
	return st, nil
}

func (f *Feed) invalidate(ctx context.Context) {
	if f.c.Cache != nil {
		f.c.Cache.Invalidate(ctx)
	}
}

// FeedKey is the keyset key of a record published at t: zero-padded
// milliseconds, so that byte order is time order, then the id as a tie
// breaker. 13 digits last until the year 2286.
func FeedKey(t time.Time, id string) string {
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	if len(ms) < 13 {
		ms = strings.Repeat("0", 13-len(ms)) + ms
	}
	return ms + "-" + id
}

// feedText is everything of a record the feed shows as free text.
func feedText(r model.SessionRecord) string {
	return strings.TrimSpace(r.Title + "\n" + r.VenueName + "\n" + r.Description)
}

// FeedTextHash identifies the public text of a record: a text-check verdict
// counts only while the record still has the text it was given.
func FeedTextHash(r model.SessionRecord) string {
	sum := sha256.Sum256([]byte(feedText(r)))
	return hex.EncodeToString(sum[:])
}

func needsTextCheck(r model.SessionRecord) bool {
	switch r.TextCheck {
	case "", TextCheckPending:
		return true
	case TextCheckPass, TextCheckReview, TextCheckRisky:
		return r.TextCheckHash != FeedTextHash(r)
	}
	return false
}

// feedBlockers lists every reason the record may not be shown; none means
// it may.
func feedBlockers(rec model.SessionRecord, item model.ServiceItem, publicImages []model.Upload) []string {
	var out []string
	if rec.Status != model.RecordApproved {
		out = append(out, BlockNotApproved)
	}
	if item.Visibility != model.VisibilityPublic {
		out = append(out, BlockItemInternal)
	}
	if rec.FeedHiddenAt != nil {
		out = append(out, BlockHidden)
	}
	switch {
	case rec.TextCheck == TextCheckPass && rec.TextCheckHash == FeedTextHash(rec):
	case rec.TextCheck == TextCheckRisky:
		out = append(out, BlockTextRisky)
	case rec.TextCheck == TextCheckReview:
		out = append(out, BlockTextReview)
	case rec.TextCheck == TextCheckSkipped:
		out = append(out, BlockTextSkipped)
	default:
		out = append(out, BlockTextPending)
	}
	pending, failed := false, false
	for _, u := range publicImages {
		switch u.ContentCheck {
		case "pass":
		case "review", "risky":
			failed = true
		default: // "", pending, failed to submit: not known to be safe
			pending = true
		}
	}
	if pending {
		out = append(out, BlockImagePending)
	}
	if failed {
		out = append(out, BlockImageNotPassed)
	}
	return out
}

// checkText runs msgSecCheck on the record's public text and returns the
// worst verdict, or pending when WeChat could not be asked. WeChat wants
// the openid of someone who used the mini-program recently: the caller
// (the approving reviewer) when there is one, else the worker.
func (f *Feed) checkText(ctx context.Context, rec model.SessionRecord) string {
	openID := ""
	uid := rec.WorkerID
	if p := PrincipalFrom(ctx); p != nil {
		uid = p.UserID
	}
	if u, err := f.c.Users.Get(ctx, uid); err == nil {
		openID = u.OpenID
	}
	worst := wechat.VerdictPass
	for _, chunk := range splitRunes(feedText(rec), feedTextCheckMaxRune) {
		v, err := f.c.Checker.MsgSecCheck(ctx, openID, feedTextCheckScene, chunk)
		if err != nil {
			f.c.Logger.WarnContext(ctx, "feed: text check failed; the record stays off the feed until a retry",
				"record_id", rec.ID, "err", err)
			return TextCheckPending
		}
		if verdictRank(v) > verdictRank(worst) {
			worst = v
		}
	}
	return string(worst)
}

func verdictRank(v wechat.Verdict) int {
	switch v {
	case wechat.VerdictPass:
		return 0
	case wechat.VerdictReview:
		return 1
	}
	return 2
}

func splitRunes(s string, n int) []string {
	if s == "" {
		return []string{""}
	}
	var out []string
	for utf8.RuneCountInString(s) > n {
		i, c := 0, 0
		for i = range s {
			if c == n {
				break
			}
			c++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

func feedActor(ctx context.Context) string {
	if PrincipalFrom(ctx) != nil {
		return ""
	}
	return feedSystemActor
}

// Recheck retries the text checks of approved records still waiting for
// one and re-evaluates their publication (the feed-recheck job). It
// returns how many records it looked at.
func (f *Feed) Recheck(ctx context.Context) (int, error) {
	todo, err := f.c.Store.TextCheckTodo(ctx, textCheckBatch)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, id := range todo {
		if _, err := f.evaluate(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return len(todo), errors.Join(errs...)
}

// ---- bureau admin ----

// Unpublish takes a record off the feed and keeps it off until a bureau
// admin republishes it. Idempotent; audited with the reason.
func (f *Feed) Unpublish(ctx context.Context, recordID, reason string) (FeedState, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 255 {
		return FeedState{}, apperr.Invalid("请填写下架原因（不超过255字）", apperr.FieldError{Field: "reason", Reason: "required"})
	}
	if err := f.adminScope(ctx, recordID); err != nil {
		return FeedState{}, err
	}
	var st FeedState
	changed := false
	err := f.c.Tx.InTx(ctx, func(ctx context.Context) error {
		rec, err := f.c.Store.LockRecord(ctx, recordID)
		if err != nil {
			return err
		}
		if rec.FeedHiddenAt == nil {
			now := f.c.Now()
			if err := f.c.Store.UpdateRecord(ctx, recordID, map[string]any{"feed_hidden_at": now, "feed_key": "", "published_at": nil}); err != nil {
				return err
			}
			if err := f.c.Audit.Record(ctx, AuditEntry{Action: "feed.unpublish", ObjectType: "session_record", ObjectID: recordID,
				Reason: reason, Before: map[string]any{"feed_key": rec.FeedKey, "published_at": rec.PublishedAt},
				After: map[string]any{"feed_hidden_at": now}}); err != nil {
				return err
			}
			rec.FeedHiddenAt, changed = &now, true
		}
		st = FeedState{RecordID: recordID, HiddenAt: rec.FeedHiddenAt, BlockedBy: []string{BlockHidden}}
		return nil
	})
	if err != nil {
		return FeedState{}, err
	}
	if changed {
		f.invalidate(ctx)
	}
	return st, nil
}

// Republish lifts a takedown (and a skipped text check) and re-evaluates:
// the record returns to the feed only if every rule is met, with a fresh
// text check when needed.
func (f *Feed) Republish(ctx context.Context, recordID string) (FeedState, error) {
	if err := f.adminScope(ctx, recordID); err != nil {
		return FeedState{}, err
	}
	err := f.c.Tx.InTx(ctx, func(ctx context.Context) error {
		rec, err := f.c.Store.LockRecord(ctx, recordID)
		if err != nil {
			return err
		}
		cols := map[string]any{}
		if rec.FeedHiddenAt != nil {
			cols["feed_hidden_at"] = nil
		}
		if rec.TextCheck == TextCheckSkipped {
			cols["text_check"] = ""
		}
		if len(cols) == 0 {
			return nil
		}
		if err := f.c.Store.UpdateRecord(ctx, recordID, cols); err != nil {
			return err
		}
		return f.c.Audit.Record(ctx, AuditEntry{Action: "feed.republish", ObjectType: "session_record", ObjectID: recordID,
			Before: map[string]any{"feed_hidden_at": rec.FeedHiddenAt, "text_check": rec.TextCheck}})
	})
	if err != nil {
		return FeedState{}, err
	}
	return f.evaluate(ctx, recordID)
}

// adminScope admits bureau admins whose region contains the record's
// community; anyone else gets the same 404 as for an unknown record.
func (f *Feed) adminScope(ctx context.Context, recordID string) error {
	rec, err := f.c.Store.Record(ctx, recordID)
	if err != nil {
		return notFound("记录", err)
	}
	comm, err := f.c.Regions.Get(ctx, rec.CommunityID)
	if err != nil || !PrincipalFrom(ctx).CanRegion(comm.Path, model.RoleBureauAdmin) {
		return notFound("记录", err)
	}
	return nil
}

// ---- WeChat push ----

// PushAuth is the signature of a push callback, from its query string.
type PushAuth struct {
	Timestamp, Nonce, Signature string
}

func errPushSignature() error {
	return apperr.New(apperr.ErrForbidden, "PUSH_SIGNATURE_INVALID", "签名校验失败")
}

// VerifyPush checks a push callback's signature and freshness: unsigned,
// forged and replayed-late callbacks are refused alike.
func (f *Feed) VerifyPush(a PushAuth) error {
	ts, err := strconv.ParseInt(a.Timestamp, 10, 64)
	if err != nil {
		return errPushSignature()
	}
	if skew := f.c.Now().Sub(time.Unix(ts, 0)); skew > pushMaxSkew || skew < -pushMaxSkew {
		return errPushSignature()
	}
	if !f.c.Push.VerifyPush(a.Timestamp, a.Nonce, a.Signature) {
		return errPushSignature()
	}
	return nil
}

// HandlePush takes a signed push callback. A wxa_media_check verdict is
// stored on its upload, and the upload's record is re-evaluated. Other
// events are acknowledged and ignored. An error makes the handler answer
// non-success, so WeChat delivers the push again.
func (f *Feed) HandlePush(ctx context.Context, a PushAuth, body []byte) error {
	if err := f.VerifyPush(a); err != nil {
		return err
	}
	ev, err := wechat.ParseMediaCheckPush(body)
	if err != nil {
		f.c.Logger.InfoContext(ctx, "wechat push ignored", "err", err)
		return nil
	}
	if f.c.AppID != "" && ev.AppID != "" && ev.AppID != f.c.AppID {
		f.c.Logger.WarnContext(ctx, "wechat push for another app ignored", "appid", ev.AppID)
		return nil
	}
	u, err := f.c.Store.UploadByTrace(ctx, ev.TraceID)
	if errors.Is(err, apperr.ErrNotFound) {
		f.c.Logger.WarnContext(ctx, "wechat media check push for an unknown trace id", "trace_id", ev.TraceID)
		return nil
	}
	if err != nil {
		return err
	}
	err = f.c.Tx.InTx(ctx, func(ctx context.Context) error {
		ok, err := f.c.Store.SetContentCheck(ctx, u.ID, ev.TraceID, string(ev.Verdict))
		if err != nil || !ok {
			return err
		}
		return f.c.Audit.Record(ctx, AuditEntry{Action: "upload.content_check", ObjectType: "upload", ObjectID: u.ID,
			ActorID: feedSystemActor, Before: map[string]any{"content_check": u.ContentCheck},
			After: map[string]any{"content_check": ev.Verdict, "trace_id": ev.TraceID, "label": ev.Label, "source": "push"}})
	})
	if err != nil {
		return err
	}
	// Even when the verdict was already stored (a redelivery), evaluate
	// again: the earlier delivery may have failed right here.
	if u.RecordID != nil {
		return f.TryPublish(ctx, *u.RecordID)
	}
	return nil
}

// ---- single flight ----

// flightGroup runs one computation per key at a time; concurrent callers
// with the same key share its result. (golang.org/x/sync/singleflight in
// twenty lines, without a new module.)
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	val  []byte
	err  error
}

func (g *flightGroup) do(ctx context.Context, key string, fn func(ctx context.Context) ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flightCall{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()
	// The leader's own request may end early; the shared work should not.
	c.val, c.err = fn(context.WithoutCancel(ctx))
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	close(c.done)
	return c.val, c.err
}
