package main

import (
	"context"
	"log/slog"
	"time"

	"qjmz/pkg/config"
	"qjmz/pkg/schedule"
	"qjmz/repository"
	"qjmz/service"
)

// wireReview builds the review use cases, rebuilds the Redis queues from
// the database (best effort: a failure is logged and the minute job tries
// again), and adds the reconcile and escalation jobs.
func (a *App) wireReview(ctx context.Context, cfg config.Config, log *slog.Logger, records *repository.Records,
	orders *repository.Orders, cipher service.Cipher, publisher service.Publisher, serving bool) *service.Review {
	svc := service.NewReview(service.ReviewConfig{Tx: a.Store, Records: records, Reviews: repository.NewReviews(a.Store),
		Queue:  repository.NewReviewQueue(a.Redis, cfg.RedisPrefix, cfg.ReviewMaxDeliveries),
		Orders: orders, Regions: a.Regions, Orgs: a.Orgs, Users: a.Users, Cipher: cipher, Media: a.Media,
		Audit: a.Auditor, Notify: a.Notify, Publisher: publisher, TemplateID: cfg.WeChatTplReview,
		LeaseTTL: cfg.ReviewLeaseTTL, Now: a.Now, Logger: log})
	if serving { // operator commands (migrate, grant-admin, ...) leave Redis alone
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := svc.Reconcile(rctx); err != nil {
			log.Warn("review: queue reconcile at start failed; the job retries", "err", err)
		}
	}
	a.Jobs = append(a.Jobs,
		schedule.Job{Name: "review-reconcile", Every: time.Minute, Run: svc.Reconcile},
		schedule.Job{Name: "review-escalate", Every: 5 * time.Minute, Run: func(ctx context.Context) error {
			n, err := svc.EscalateOverdue(ctx)
			if n > 0 {
				log.Info("review: overdue records escalated", "count", n)
			}
			return err
		}})
	return svc
}
