package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"
)

// demoSession is one session the demo worker records and the demo station
// reviewer approves, so the public feed of a fresh `make run` is not empty.
type demoSession struct {
	item, title, venue, description      string
	daysAgo, hour, minutes, participants int
}

// Oldest first: each is published as it is approved, and the feed shows the
// latest publication on top.
var demoSessions = []demoSession{
	{"MEAL", "重阳助餐陪伴", "青社社区活动室", "志愿者与社工一起为老人准备午餐并开展手工活动。", 3, 10, 120, 20},
	{"MEAL", "城南社区助餐日", "青社社区老年食堂", "集中供餐，社工协助行动不便的老人取餐，宣讲冬季饮食安全。", 2, 11, 75, 18},
	{"MEAL", "青社社区爱心助餐", "青社社区老年食堂", "为社区高龄独居老人送餐上门并陪伴用餐，了解近期身体和生活情况。", 1, 11, 90, 12},
}

// seedDemoSessions drives the public API in process, exactly as the
// mini-program would: log in, record a session, upload photos through
// signed URLs, submit, claim, approve. It is best effort: the demo still
// works without it, so failures are logged, not returned.
func seedDemoSessions(ctx context.Context, a *App) {
	c := demoClient{h: a.Handler, base: a.Cfg.PublicBaseURL}
	if err := c.run(ctx); err != nil {
		a.Log.Warn("demo sessions not seeded; the feed starts empty", "err", err)
		return
	}
	a.Log.Info("demo sessions recorded, reviewed and published on the feed", "count", len(demoSessions))
}

type demoClient struct {
	h    http.Handler
	base string
}

func (c demoClient) call(method, path, token string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

func (c demoClient) login(name string) (string, error) {
	var t struct {
		AccessToken string `json:"access_token"`
	}
	err := c.call("POST", "/api/v1/auth/wechat-login", "", map[string]string{"code": "dev:" + name}, &t)
	return t.AccessToken, err
}

type idItem struct {
	ID   string `json:"id"`
	Item struct {
		Code string `json:"code"`
	} `json:"item"`
	Version int `json:"version"`
}

func (c demoClient) run(ctx context.Context) error {
	worker, err := c.login("worker-haoxinqing")
	if err != nil {
		return err
	}
	reviewer, err := c.login("reviewer-chengnan")
	if err != nil {
		return err
	}
	var orders struct{ Items []idItem }
	if err := c.call("GET", "/api/v1/orders", worker, nil, &orders); err != nil {
		return err
	}
	orderOf := map[string]string{}
	for _, o := range orders.Items {
		orderOf[o.Item.Code] = o.ID
	}
	var regions struct{ Items []struct{ ID, Name string } }
	if err := c.call("GET", "/api/v1/regions", "", nil, &regions); err != nil {
		return err
	}
	if len(regions.Items) == 0 {
		return fmt.Errorf("no root region")
	}
	community, err := c.findRegion(regions.Items[0].ID, "城南街道", "青社社区")
	if err != nil {
		return err
	}
	var bens struct {
		Items []struct {
			ID  string `json:"id"`
			Age int    `json:"age"`
		}
	}
	if err := c.call("GET", "/api/v1/beneficiaries?community_id="+url.QueryEscape(community), worker, nil, &bens); err != nil {
		return err
	}
	var benIDs []string
	for _, b := range bens.Items {
		if b.Age >= 18 && len(benIDs) < 2 {
			benIDs = append(benIDs, b.ID)
		}
	}
	now := time.Now()
	for i, s := range demoSessions {
		order := orderOf[s.item]
		if order == "" {
			return fmt.Errorf("no demo order for %s", s.item)
		}
		// Late morning, Beijing time, a few days back.
		cst := time.FixedZone("CST", 8*3600)
		day := now.In(cst).AddDate(0, 0, -s.daysAgo)
		start := time.Date(day.Year(), day.Month(), day.Day(), s.hour, 0, 0, 0, cst)
		var rec idItem
		if err := c.call("POST", "/api/v1/records", worker, map[string]any{
			"order_id": order, "community_id": community, "venue_name": s.venue, "venue_lat": 29.5186, "venue_lng": 108.7703,
			"start_at": start.Format(time.RFC3339), "end_at": start.Add(time.Duration(s.minutes) * time.Minute).Format(time.RFC3339),
			"title": s.title, "description": s.description, "participant_count": s.participants, "beneficiary_ids": benIDs,
		}, &rec); err != nil {
			return err
		}
		var media []string
		for p := range 3 {
			id, err := c.upload(worker, rec.ID, demoPhoto(i*3+p))
			if err != nil {
				return err
			}
			media = append(media, id)
		}
		if err := c.call("POST", "/api/v1/records/"+rec.ID+"/submit", worker, map[string]any{"expected_version": 1}, &rec); err != nil {
			return err
		}
		if err := c.call("POST", "/api/v1/review/records/"+rec.ID+"/decision", reviewer, map[string]any{
			"decision": "approve", "expected_version": rec.Version, "public_media_ids": media}, nil); err != nil {
			return err
		}
	}
	return nil
}

func (c demoClient) findRegion(parent string, names ...string) (string, error) {
	for _, name := range names {
		var kids struct{ Items []struct{ ID, Name string } }
		if err := c.call("GET", "/api/v1/regions?parent_id="+parent, "", nil, &kids); err != nil {
			return "", err
		}
		found := ""
		for _, k := range kids.Items {
			if k.Name == name {
				found = k.ID
			}
		}
		if found == "" {
			return "", fmt.Errorf("region %s not found", name)
		}
		parent = found
	}
	return parent, nil
}

func (c demoClient) upload(token, recordID string, body []byte) (string, error) {
	var t struct {
		UploadID string            `json:"upload_id"`
		Method   string            `json:"method"`
		URL      string            `json:"url"`
		Headers  map[string]string `json:"headers"`
	}
	if err := c.call("POST", "/api/v1/uploads", token, map[string]any{"record_id": recordID, "kind": "image",
		"content_type": "image/jpeg", "size": len(body)}, &t); err != nil {
		return "", err
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", err
	}
	req := httptest.NewRequest(t.Method, u.RequestURI(), bytes.NewReader(body))
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("PUT evidence: %d %s", rec.Code, rec.Body.String())
	}
	err = c.call("POST", "/api/v1/uploads/"+t.UploadID+"/complete", token,
		map[string]any{"latitude": 29.5185, "longitude": 108.7702, "accuracy_m": 20.0}, nil)
	return t.UploadID, err
}

// demoPhoto paints a distinct, photo-like 800×600 scene (sky, hills, a
// table with bowls) so the demo photos are neither identical nor near
// duplicates of each other.
func demoPhoto(seed int) []byte {
	const w, h = 800, 600
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	f := float64(seed + 1)
	for y := range h {
		for x := range w {
			var c color.RGBA
			hill := float64(h)*0.45 + 40*math.Sin(float64(x)/(60+7*f)+f)
			switch {
			case float64(y) < hill:
				c = color.RGBA{uint8(120 + int(60*float64(y)/hill)), uint8(170 + seed*7%60), 235, 255}
			case y < h*3/4:
				c = color.RGBA{uint8(60 + seed*13%80), uint8(120 + (x+y)%40), 70, 255}
			default:
				c = color.RGBA{uint8(150 + seed*11%60), 110, uint8(70 + x%30), 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	for b := range 4 + seed%3 {
		cx, cy, r := 120+b*150+seed*23%60, h*3/4+40+(b*37+seed*11)%60, 30+(seed+b)%20
		for y := cy - r; y <= cy+r; y++ {
			for x := cx - r; x <= cx+r; x++ {
				if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r && x >= 0 && x < w && y >= 0 && y < h {
					img.SetRGBA(x, y, color.RGBA{240, uint8(200 + b*10), uint8(150 + seed*9%100), 255})
				}
			}
		}
	}
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
	return buf.Bytes()
}
