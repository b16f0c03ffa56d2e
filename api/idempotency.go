package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"qjmz/pkg/apperr"
)

// Idempotency-Key handling (DESIGN.md §6): a write retried with the same key
// — a phone on a flaky network pressing "submit" twice, or the client's own
// retry after a timeout — gets the first answer again instead of doing the
// work twice. The first response is kept in Redis for a day; a retry that
// arrives while the first is still running gets 409 and may try again; the
// same key with a different request is refused. Without Redis the request
// simply runs: the business rules (conditional updates, versions) still stop
// most doubles, and availability matters more.

const (
	idemTTL        = 24 * time.Hour
	idemPendingTTL = 2 * time.Minute
	idemMaxBody    = 256 << 10 // larger responses are not stored (and not replayed)
)

var idemKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_\-:.]{8,128}$`)

type storedResponse struct {
	State       string `json:"state"` // pending | done
	RequestHash string `json:"request_hash"`
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        []byte `json:"body"`
}

type capturingWriter struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	if w.buf.Len() <= idemMaxBody {
		w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *capturingWriter) WriteString(s string) (int, error) {
	if w.buf.Len() <= idemMaxBody {
		w.buf.WriteString(s)
	}
	return w.ResponseWriter.WriteString(s)
}

// idempotency must run after authentication (keys are per caller) and
// before the handler.
func (s *server) idempotency(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" || c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		c.Next()
		return
	}
	if !idemKeyPattern.MatchString(key) {
		fail(c, s.log, apperr.New(apperr.ErrInvalid, "IDEMPOTENCY_KEY_INVALID", "Idempotency-Key 格式不正确（8–128位字母数字）"))
		return
	}
	if s.Idempotency == nil {
		c.Next()
		return
	}
	who := "ip:" + c.ClientIP()
	if p := principal(c); p != nil {
		who = "user:" + p.UserID
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		fail(c, s.log, decodeError(err))
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(append([]byte(c.Request.Method+" "+c.Request.URL.Path+"\n"), body...))
	reqHash := hex.EncodeToString(sum[:])
	rkey := s.Config.RedisPrefix + "idem:{" + who + "}:" + key

	ctx, cancel := context.WithTimeout(c.Request.Context(), 300*time.Millisecond)
	pending, _ := json.Marshal(storedResponse{State: "pending", RequestHash: reqHash})
	ok, err := s.Idempotency.SetNX(ctx, rkey, pending, idemPendingTTL).Result()
	var prev []byte
	if err == nil && !ok {
		prev, err = s.Idempotency.Get(ctx, rkey).Bytes()
	}
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) {
		s.log.Warn("idempotency store unavailable; running the request", "request_id", requestID(c), "err", err)
		c.Next()
		return
	}
	if !ok && prev != nil {
		var sr storedResponse
		if json.Unmarshal(prev, &sr) == nil {
			switch {
			case sr.RequestHash != reqHash:
				fail(c, s.log, apperr.New(apperr.ErrUnprocessable, "IDEMPOTENCY_KEY_REUSED", "同一个 Idempotency-Key 不能用于不同的请求"))
			case sr.State == "pending":
				fail(c, s.log, apperr.New(apperr.ErrConflict, "REQUEST_IN_PROGRESS", "相同的请求正在处理，请稍后查看结果"))
			default:
				c.Header("Idempotent-Replayed", "true")
				c.Data(sr.Status, sr.ContentType, sr.Body)
				c.Abort()
			}
			return
		}
	}

	cw := &capturingWriter{ResponseWriter: c.Writer}
	c.Writer = cw
	forget := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 300*time.Millisecond)
		defer cancel()
		s.Idempotency.Del(ctx, rkey)
	}
	defer func() {
		if r := recover(); r != nil {
			forget()
			panic(r)
		}
	}()
	c.Next()

	status := cw.Status()
	// Answers that a retry should not get again: server failures, an expired
	// login (the client refreshes and retries), rate limiting, and bodies too
	// large to keep.
	if status >= 500 || status == http.StatusUnauthorized || status == http.StatusTooManyRequests || cw.buf.Len() > idemMaxBody {
		forget()
		return
	}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(c.Request.Context()), 300*time.Millisecond)
	defer cancel()
	done, _ := json.Marshal(storedResponse{State: "done", RequestHash: reqHash, Status: status,
		ContentType: cw.Header().Get("Content-Type"), Body: cw.buf.Bytes()})
	if err := s.Idempotency.Set(ctx, rkey, done, idemTTL).Err(); err != nil {
		s.log.Warn("idempotency: storing the response failed", "request_id", requestID(c), "err", err)
	}
}
