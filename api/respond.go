// Package api is the HTTP layer: the route table, middleware, request and
// response DTOs, and the one place where errors become HTTP statuses. No
// *gin.Context leaves this package.
package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"qjmz/pkg/apperr"
)

// beijing is UTC+8 without DST, so no tz database is needed.
var beijing = time.FixedZone("CST", 8*3600)

// ts renders a time as RFC 3339 with the +08:00 offset (DESIGN.md §6).
func ts(t time.Time) string { return t.In(beijing).Format(time.RFC3339) }

// tsPtr renders an optional time.
func tsPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := ts(*t)
	return &s
}

type errorBody struct {
	Code      string       `json:"code"`
	Message   string       `json:"message"`
	RequestID string       `json:"request_id"`
	Fields    []fieldError `json:"fields,omitempty"`
	Details   any          `json:"details,omitempty"`
}

type fieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

type listBody[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](items []T, next string) listBody[T] {
	if items == nil {
		items = []T{}
	}
	return listBody[T]{Items: items, NextCursor: next}
}

var kindStatus = []struct {
	kind   error
	status int
	code   string
	msg    string
}{
	{apperr.ErrNotFound, http.StatusNotFound, "NOT_FOUND", "内容不存在"},
	{apperr.ErrConflict, http.StatusConflict, "CONFLICT", "操作冲突，请刷新后重试"},
	{apperr.ErrForbidden, http.StatusForbidden, "FORBIDDEN", "无权进行此操作"},
	{apperr.ErrInvalid, http.StatusBadRequest, "VALIDATION_FAILED", "请求内容不正确"},
	{apperr.ErrUnauthenticated, http.StatusUnauthorized, "UNAUTHENTICATED", "请先登录"},
	{apperr.ErrRateLimited, http.StatusTooManyRequests, "RATE_LIMITED", "操作太频繁，请稍后再试"},
	{apperr.ErrTooLarge, http.StatusRequestEntityTooLarge, "TOO_LARGE", "内容过大"},
	{apperr.ErrUnprocessable, http.StatusUnprocessableEntity, "UNPROCESSABLE", "内容未通过检查"},
	{apperr.ErrUnavailable, http.StatusServiceUnavailable, "UNAVAILABLE", "服务暂时不可用，请稍后重试"},
	{apperr.ErrGone, http.StatusGone, "GONE", "已失效，请重新开始"},
}

// fail writes err as the error envelope. It is the only place that turns
// errors into statuses; unknown errors are logged with the request id and
// answered with a generic 500, never with internal text.
func fail(c *gin.Context, log *slog.Logger, err error) {
	rid := requestID(c)
	var ae *apperr.Error
	if errors.As(err, &ae) {
		status := http.StatusInternalServerError
		for _, k := range kindStatus {
			if errors.Is(ae.Kind, k.kind) {
				status = k.status
				break
			}
		}
		if status >= 500 {
			log.ErrorContext(c.Request.Context(), "request failed", "request_id", rid, "code", ae.Code, "err", err)
		}
		body := errorBody{Code: ae.Code, Message: ae.Message, RequestID: rid, Details: ae.Details}
		for _, f := range ae.Fields {
			body.Fields = append(body.Fields, fieldError(f))
		}
		c.AbortWithStatusJSON(status, body)
		return
	}
	for _, k := range kindStatus {
		if errors.Is(err, k.kind) {
			c.AbortWithStatusJSON(k.status, errorBody{Code: k.code, Message: k.msg, RequestID: rid})
			return
		}
	}
	log.ErrorContext(c.Request.Context(), "request failed", "request_id", rid, "err", err)
	c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{Code: "INTERNAL", Message: "服务器开小差了，请稍后再试", RequestID: rid})
}

// bindJSON decodes and validates the body; it answers the error itself and
// reports false on failure.
func (s *server) bindJSON(c *gin.Context, dst any) bool {
	log := s.log
	dec := json.NewDecoder(c.Request.Body)
	if err := dec.Decode(dst); err != nil {
		fail(c, log, decodeError(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		fail(c, log, apperr.New(apperr.ErrInvalid, "MALFORMED_JSON", "请求内容不是有效的JSON"))
		return false
	}
	if err := s.validate.Struct(dst); err != nil {
		fail(c, log, validationError(err))
		return false
	}
	return true
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return apperr.New(apperr.ErrTooLarge, "BODY_TOO_LARGE", "请求内容过大")
	case errors.As(err, &ute):
		return apperr.New(apperr.ErrInvalid, "MALFORMED_JSON", "请求字段类型不正确").
			WithFields(apperr.FieldError{Field: ute.Field, Reason: "type_" + ute.Type.String()})
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.ErrInvalid, "MALFORMED_JSON", "请求内容为空")
	}
	return apperr.New(apperr.ErrInvalid, "MALFORMED_JSON", "请求内容不是有效的JSON")
}

func validationError(err error) error {
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return apperr.Invalid("请求内容不正确")
	}
	code := "VALIDATION_FAILED"
	msg := "请求内容不正确"
	var fields []apperr.FieldError
	for _, fe := range ves {
		reason := fe.Tag()
		if fe.Param() != "" {
			reason += ":" + fe.Param()
		}
		if fe.Tag() == "oneof" {
			code, msg = "UNKNOWN_ENUM_VALUE", "取值不在允许范围内"
		}
		fields = append(fields, apperr.FieldError{Field: jsonName(fe), Reason: reason})
	}
	return apperr.New(apperr.ErrInvalid, code, msg).WithFields(fields...)
}

func jsonName(fe validator.FieldError) string { return fe.Field() }

// newValidator reads `binding` tags (gin's convention) and reports fields by
// their json names. It is our own instance: gin's shared one is global.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.SetTagName("binding")
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return f.Name
		}
		return name
	})
	return v
}

// limitParam parses ?limit= with a default and a cap; over the cap is an
// error, not a silent clamp, so clients learn the rule.
func limitParam(c *gin.Context, def, max int) (int, error) {
	s := c.Query("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, apperr.New(apperr.ErrInvalid, "LIMIT_OUT_OF_RANGE", "每页条数须在1到"+strconv.Itoa(max)+"之间").
			WithFields(apperr.FieldError{Field: "limit", Reason: "range_1_" + strconv.Itoa(max)})
	}
	return n, nil
}
