// Command loadgen seeds the public feed and drives it at fixed request
// rates on loopback, for docs/performance.md.
//
//	loadgen seed -n 5000      insert published records into the database at
//	                          QJMZ_MYSQL_DSN (demo data must be loaded: start
//	                          the server once) and drop the cached feed pages
//	                          (QJMZ_REDIS_ADDRS, QJMZ_REDIS_PREFIX)
//	loadgen run -rates 500,1000,2000 -duration 20s \
//	    -url healthz=http://127.0.0.1:18090/healthz \
//	    -url feed=http://127.0.0.1:18090/api/v1/feed ...
//
// run is open-loop: requests leave on a fixed schedule whether or not
// earlier ones have come back, and latency is measured from the moment a
// request was due, so a slow server cannot slow the generator down and
// hide its own queueing (coordinated omission). A URL may contain
// {randcursor}, replaced per request by a random feed cursor, which makes
// every request a cache miss. Only loopback hosts are accepted, and runs are
// bounded in rate, duration and total count.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"qjmz/model"
	"qjmz/pkg/ids"
	"qjmz/repository"
	"qjmz/service"
)

const (
	maxRate     = 10000
	maxDuration = 2 * time.Minute
	maxRequests = 1_000_000
	maxSeed     = 200_000
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen seed|run [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// ---- seed ----

func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("n", 5000, "published records to insert")
	photos := fs.Int("photos", 2, "public photos per record")
	span := fs.Duration("span", 2*365*24*time.Hour, "publication times spread evenly over this much of the past")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > maxSeed {
		return fmt.Errorf("-n must be 1..%d", maxSeed)
	}
	dsn := os.Getenv("QJMZ_MYSQL_DSN")
	if dsn == "" {
		return errors.New("QJMZ_MYSQL_DSN is required")
	}
	db, err := repository.OpenDB(repository.DBOptions{MySQLDSN: dsn, MaxOpenConns: 4, MaxIdleConns: 4})
	if err != nil {
		return err
	}
	var comms []struct{ ID, ParentID string }
	db.Raw("SELECT id, parent_id FROM regions WHERE level = 'community' ORDER BY code").Scan(&comms)
	var items, orgs []string
	db.Raw("SELECT id FROM service_items WHERE visibility = 'public' ORDER BY code").Scan(&items)
	db.Raw("SELECT id FROM organizations ORDER BY name").Scan(&orgs)
	var worker, order string
	db.Raw("SELECT id FROM users ORDER BY id LIMIT 1").Scan(&worker)
	db.Raw("SELECT id FROM orders ORDER BY id LIMIT 1").Scan(&order)
	if len(comms) == 0 || len(items) == 0 || len(orgs) == 0 || worker == "" || order == "" {
		return errors.New("no demo data: start the server once against this database first")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	recs := make([]model.SessionRecord, 0, 500)
	ups := make([]model.Upload, 0, 500*(*photos))
	flush := func() error {
		if err := db.CreateInBatches(recs, 500).Error; err != nil {
			return err
		}
		if len(ups) > 0 {
			if err := db.CreateInBatches(ups, 500).Error; err != nil {
				return err
			}
		}
		recs, ups = recs[:0], ups[:0]
		return nil
	}
	for i := range *n {
		c := comms[i%len(comms)]
		published := now.Add(-time.Duration(i) * (*span / time.Duration(*n)))
		start := published.Add(-26 * time.Hour)
		r := model.SessionRecord{ID: ids.New(), OrgID: orgs[i%len(orgs)], OrderID: order, ItemID: items[i%len(items)],
			TownID: c.ParentID, CommunityID: c.ID, WorkerID: worker, VenueName: "社区活动室", StartAt: start, EndAt: start.Add(time.Hour),
			Title: fmt.Sprintf("压测服务活动第%d场", i+1), Description: "为辖区群众开展的服务活动，用于性能测试的模拟数据。",
			ParticipantCount: 10 + i%30, Status: model.RecordApproved, Version: 1, ReviewLevel: 1, Payable: true,
			TextCheck: service.TextCheckPass, PublishedAt: &published}
		r.TextCheckHash = service.FeedTextHash(r)
		r.FeedKey = service.FeedKey(published, r.ID)
		recs = append(recs, r)
		for range *photos {
			id := ids.New()
			rid := r.ID
			ups = append(ups, model.Upload{ID: id, UploaderID: worker, OrgID: r.OrgID, RecordID: &rid, Kind: model.KindImage,
				ContentType: "image/jpeg", DeclaredSize: 1, StorageKey: "evidence/" + id + "/original.jpg", Status: model.UploadReady,
				ExpiresAt: now, PublicOK: true, DisplayKey: "evidence/" + id + "/display.jpg", ThumbKey: "evidence/" + id + "/thumb.jpg",
				ContentCheck: "pass"})
		}
		if len(recs) == cap(recs) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if addrs := os.Getenv("QJMZ_REDIS_ADDRS"); addrs != "" {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(addrs, ",")})
		defer rdb.Close()
		repository.NewFeedCache(rdb, os.Getenv("QJMZ_REDIS_PREFIX"), repository.FeedCacheOptions{Timeout: time.Second}).
			Invalidate(context.Background())
	}
	var town string
	db.Raw("SELECT town_id FROM session_records WHERE feed_key > '' GROUP BY town_id ORDER BY COUNT(*) DESC LIMIT 1").Scan(&town)
	fmt.Printf("seeded %d published records with %d photos each; busiest town_id=%s\n", *n, *photos, town)
	return nil
}

// ---- run ----

type target struct {
	name, raw string
	u         *url.URL
}

type urlFlags []target

func (f *urlFlags) String() string { return fmt.Sprint(len(*f)) }

func (f *urlFlags) Set(v string) error {
	name, raw, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return errors.New("want name=URL")
	}
	u, err := url.Parse(strings.ReplaceAll(raw, "{randcursor}", "x"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%s: not an http(s) URL", raw)
	}
	if !loopback(u.Hostname()) {
		return fmt.Errorf("%s: only loopback hosts may be load-tested", u.Host)
	}
	*f = append(*f, target{name: name, raw: raw, u: u})
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var targets urlFlags
	fs.Var(&targets, "url", "name=URL to load (repeatable; loopback only)")
	rates := fs.String("rates", "500,1000,2000", "requests per second, comma-separated")
	duration := fs.Duration("duration", 20*time.Second, "measured time per URL and rate")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured time before each measurement")
	workers := fs.Int("workers", 256, "concurrent requests at most; a request due while all are busy counts as dropped")
	timeout := fs.Duration("timeout", 2*time.Second, "per-request timeout")
	pause := fs.Duration("pause", 2*time.Second, "idle time between measurements")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("at least one -url is required")
	}
	if *duration <= 0 || *duration+*warmup > maxDuration {
		return fmt.Errorf("duration+warmup must be within %v", maxDuration)
	}
	var rs []int
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r < 1 || r > maxRate {
			return fmt.Errorf("rate %q must be 1..%d", s, maxRate)
		}
		if float64(r)*duration.Seconds() > maxRequests {
			return fmt.Errorf("rate %d for %v exceeds %d requests", r, *duration, maxRequests)
		}
		rs = append(rs, r)
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		MaxIdleConns: *workers, MaxIdleConnsPerHost: *workers, IdleConnTimeout: 30 * time.Second, DisableCompression: true,
	}}
	fmt.Printf("| target | rate/s | sent | ok | errors | dropped | throughput/s | p50 ms | p90 ms | p99 ms | max ms |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rate := range rs {
		for _, t := range targets {
			if *warmup > 0 {
				load(client, t, rate, *warmup, *workers)
			}
			res := load(client, t, rate, *duration, *workers)
			fmt.Printf("| %s | %d | %d | %d | %d | %d | %.0f | %s | %s | %s | %s |\n", t.name, rate, res.sent, res.ok, res.errors,
				res.dropped, float64(res.ok)/duration.Seconds(), ms(res.pct(50)), ms(res.pct(90)), ms(res.pct(99)), ms(res.pct(100)))
			time.Sleep(*pause)
		}
	}
	return nil
}

type result struct {
	sent, ok, errors, dropped int
	lat                       []time.Duration
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[max(0, min(i, len(r.lat)-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

type job struct {
	due time.Time
	url string
}

// load sends rate requests per second for d, on schedule.
func load(client *http.Client, t target, rate int, d time.Duration, workers int) result {
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	jobs := make(chan job, workers)
	var mu sync.Mutex
	res := result{lat: make([]time.Duration, 0, n)}
	var errs atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ok := fetch(client, j.url)
				lat := time.Since(j.due)
				mu.Lock()
				if ok {
					res.ok++
					res.lat = append(res.lat, lat)
				} else {
					errs.Add(1)
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		u := t.raw
		if strings.Contains(u, "{randcursor}") {
			u = strings.ReplaceAll(u, "{randcursor}", randCursor())
		}
		select {
		case jobs <- job{due: due, url: u}:
			res.sent++
		default:
			res.dropped++
		}
	}
	close(jobs)
	wg.Wait()
	res.errors = int(errs.Load())
	slices.Sort(res.lat)
	return res
}

func fetch(client *http.Client, u string) bool {
	resp, err := client.Get(u)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}

// randCursor is a valid cursor at a random moment of the last two years:
// a page no one has asked for, so the cache cannot answer it.
func randCursor() string {
	now := time.Now().UnixMilli()
	ms := now - rand.Int64N(2*365*24*3600*1000)
	return service.FeedKey(time.UnixMilli(ms), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
}
