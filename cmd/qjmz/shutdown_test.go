package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"qjmz/pkg/config"
	"qjmz/pkg/storage"
)

// TestGracefulShutdownFinishesInFlightRequests starts the real server,
// begins a slow upload, then stops the server (what SIGTERM does): the
// upload still completes and is stored, and serve returns cleanly.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	vars := map[string]string{"QJMZ_MODE": "embedded", "QJMZ_DATA_DIR": dir, "QJMZ_HTTP_ADDR": addr, "QJMZ_SHUTDOWN_TIMEOUT": "10s"}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := http.Get(base + "/healthz"); err == nil {
			_ = res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A signed PUT from the same key material the server uses.
	local, err := storage.NewLocal(storage.LocalConfig{Root: filepath.Join(dir, "media"), PublicBaseURL: cfg.PublicBaseURL + "/media",
		Secret: []byte(cfg.MediaSecret)})
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 64<<10)
	ticket, err := local.PresignPut(context.Background(), "incoming/shutdown-test", "image/jpeg", int64(len(payload)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(ticket.Method, ticket.URL, pr)
	req.ContentLength = int64(len(payload))
	for k, v := range ticket.Headers {
		req.Header.Set(k, v)
	}
	result := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		_ = res.Body.Close()
		result <- res.StatusCode
	}()
	_, _ = pw.Write(payload[:1024]) // the request is now in flight
	time.Sleep(100 * time.Millisecond)
	stop() // SIGTERM
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write(payload[1024:])
	_ = pw.Close()

	if st := <-result; st != http.StatusOK {
		t.Fatalf("in-flight upload during shutdown answered %d", st)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if info, err := local.Head(context.Background(), "incoming/shutdown-test"); err != nil || info.Size != int64(len(payload)) {
		t.Fatalf("upload not stored after shutdown: %+v %v", info, err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still accepting after shutdown")
	}
}
