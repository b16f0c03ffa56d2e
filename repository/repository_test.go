package repository_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"qjmz/model"
	"qjmz/pkg/apperr"
	"qjmz/pkg/ids"
	"qjmz/repository"
	"qjmz/repository/repotest"
)

func TestMigrationUpgradeKeepsRows(t *testing.T) {
	ctx := context.Background()
	db := repotest.DB(t, repotest.Options{SkipMigrate: true})
	if err := repository.MigrateTo(ctx, db, "0001_identity"); err != nil {
		t.Fatalf("migrate to 0001: %v", err)
	}
	if db.Migrator().HasColumn("users", "privacy_consent_version") {
		t.Fatal("0001 schema already has the 0002 column; the test would prove nothing")
	}
	// A user written by the previous version.
	if err := db.Exec("INSERT INTO users (id, open_id, nickname, status, created_at, updated_at) VALUES (?,?,?,?,?,?)",
		"01JOLDUSER0000000000000000", "o_old", "老用户", "active", time.Now().UTC(), time.Now().UTC()).Error; err != nil {
		t.Fatalf("insert old row: %v", err)
	}
	if err := repository.Migrate(ctx, db); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	// Idempotent: a second run changes nothing and does not fail.
	if err := repository.Migrate(ctx, db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var u model.User
	if err := db.Where("open_id = ?", "o_old").Take(&u).Error; err != nil {
		t.Fatalf("old user lost after upgrade: %v", err)
	}
	if u.Nickname != "老用户" || u.PrivacyConsentVersion != "" {
		t.Fatalf("old user changed: %+v", u)
	}
	if err := db.Model(&model.User{}).Where("id = ?", u.ID).Update("privacy_consent_version", "2026-11").Error; err != nil {
		t.Fatalf("new column not usable: %v", err)
	}
	var head model.AuditHead
	if err := db.Take(&head, 1).Error; err != nil || head.Hash != repository.GenesisHash {
		t.Fatalf("audit chain head not initialised: %+v %v", head, err)
	}
}

func newStore(t *testing.T) (*repository.Store, *gorm.DB) {
	db := repotest.DB(t, repotest.Options{})
	return repository.NewStore(db), db
}

func TestRegionSubtreeIsAPrefixQuery(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	regions := repository.NewRegions(s)
	mk := func(parent *model.Region, code, name, level string) model.Region {
		r := model.Region{ID: ids.New(), Code: code, Name: name, Level: level}
		if parent != nil {
			r.ParentID, r.Path = &parent.ID, parent.Path+r.ID+"/"
		} else {
			r.Path = "/" + r.ID + "/"
		}
		if err := regions.Create(ctx, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	d := mk(nil, "500114", "黔江区", model.LevelDistrict)
	a := mk(&d, "500114001", "城南街道", model.LevelTown)
	b := mk(&d, "500114002", "城西街道", model.LevelTown)
	mk(&a, "500114001001", "青社社区", model.LevelCommunity)
	mk(&b, "500114002001", "水井湾社区", model.LevelCommunity)

	sub, err := regions.Subtree(ctx, a.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) != 2 || sub[0].Name != "城南街道" || sub[1].Name != "青社社区" {
		t.Fatalf("subtree of 城南街道 = %v", names(sub))
	}
	all, _ := regions.Subtree(ctx, d.Path, model.LevelCommunity)
	if len(all) != 2 {
		t.Fatalf("communities of district = %v", names(all))
	}
	dup := model.Region{ID: ids.New(), Code: "500114001", Name: "重复", Level: model.LevelTown, Path: "/x/"}
	if err := regions.Create(ctx, &dup); !errors.Is(err, apperr.ErrConflict) {
		t.Fatalf("duplicate code: want ErrConflict, got %v", err)
	}
}

func names(rs []model.Region) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestAuditChainDetectsTampering(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	audit := repository.NewAudit(s)
	for i := range 5 {
		if err := audit.Append(ctx, &model.AuditEvent{ID: ids.New(), ActorID: "u1", Action: "test.act",
			ObjectType: "thing", ObjectID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, probs, err := audit.Verify(ctx)
	if err != nil || n != 5 || len(probs) != 0 {
		t.Fatalf("intact chain: n=%d problems=%v err=%v", n, probs, err)
	}

	cases := []struct {
		name   string
		tamper func(t *testing.T)
		want   string
	}{
		{"altered row", func(t *testing.T) {
			db.Exec("UPDATE audit_events SET object_id = 'forged' WHERE seq = 3")
		}, "hash_mismatch"},
		{"deleted row", func(t *testing.T) { db.Exec("DELETE FROM audit_events WHERE seq = 2") }, "missing"},
		{"truncated tail", func(t *testing.T) { db.Exec("DELETE FROM audit_events WHERE seq = 5") }, "head_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.tamper(t)
			_, probs, err := audit.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range probs {
				found = found || p.Reason == tc.want
			}
			if !found {
				t.Fatalf("want a %s problem, got %v", tc.want, probs)
			}
		})
	}
}

func TestAuditAppendsConcurrentlyWithoutForks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	audit := repository.NewAudit(s)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- audit.Append(ctx, &model.AuditEvent{ID: ids.New(), Action: "c", ObjectType: "t", ObjectID: fmt.Sprint(i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	n, probs, err := audit.Verify(ctx)
	if err != nil || n != 40 || len(probs) != 0 {
		t.Fatalf("after concurrent appends: n=%d problems=%v err=%v", n, probs, err)
	}
}

func TestRefreshTokenLockAndSingleUse(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	sessions := repository.NewSessions(s)
	sess := model.AuthSession{ID: ids.New(), UserID: ids.New()}
	if err := sessions.Create(ctx, &sess); err != nil {
		t.Fatal(err)
	}
	rt := model.RefreshToken{ID: ids.New(), SessionID: sess.ID, TokenHash: "h1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := sessions.AddRefreshToken(ctx, &rt); err != nil {
		t.Fatal(err)
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		got, err := sessions.LockRefreshToken(ctx, "h1")
		if err != nil || got.ID != rt.ID {
			return fmt.Errorf("lock: %v: %w", got, err)
		}
		return sessions.MarkRefreshUsed(ctx, got.ID, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := sessions.LockRefreshToken(ctx, "h1")
	if got.UsedAt == nil {
		t.Fatal("used_at not recorded")
	}
	if _, err := sessions.LockRefreshToken(ctx, "nope"); !errors.Is(err, apperr.ErrNotFound) {
		t.Fatalf("unknown token: want ErrNotFound, got %v", err)
	}
}

func TestInviteMarkUsedOnlyOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	inv := repository.NewInvites(s)
	i := model.Invite{ID: ids.New(), CodeHash: "c1", OrgID: ids.New(), Role: model.RoleWorker, CreatedBy: "x", ExpiresAt: time.Now().Add(time.Hour)}
	if err := inv.Create(ctx, &i); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wins := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := inv.MarkUsed(ctx, i.ID, ids.New(), time.Now())
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("invite consumed %d times, want exactly once", n)
	}
}
