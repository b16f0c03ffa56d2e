// Package apperr holds the few error kinds the whole service speaks in.
//
// Business code returns (or wraps with %w) one of the sentinel kinds, or an
// *Error that carries a stable machine code and a short Chinese message safe
// to show in a toast. The api package maps kinds to HTTP statuses in exactly
// one place, so no layer below it knows about HTTP.
package apperr

import (
	"errors"
	"fmt"
)

// Sentinel kinds. Compare with errors.Is, never with ==.
var (
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrForbidden       = errors.New("forbidden")
	ErrInvalid         = errors.New("invalid")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrRateLimited     = errors.New("rate limited")
	ErrTooLarge        = errors.New("too large")
	ErrUnprocessable   = errors.New("unprocessable")
	ErrUnavailable     = errors.New("unavailable")
	// ErrGone is for something that existed but can no longer be used
	// (an expired upload ticket); unlike ErrNotFound it tells the client
	// to start over rather than to look elsewhere.
	ErrGone = errors.New("gone")
)

// FieldError names one invalid input field.
type FieldError struct {
	Field  string
	Reason string
}

// Error is a business error with a stable code for programs and a message
// for people. Kind is one of the sentinels above and decides the HTTP status.
type Error struct {
	Kind    error
	Code    string
	Message string
	Fields  []FieldError
	// Details carries structured, client-safe data (e.g. risk flags).
	Details any
	cause   error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code + ": " + e.Message
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// New builds a coded error of the given kind.
func New(kind error, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Wrap builds a coded error that keeps cause for logs (never sent to clients).
func Wrap(kind error, code, message string, cause error) *Error {
	return &Error{Kind: kind, Code: code, Message: message, cause: cause}
}

// WithFields returns a copy carrying field-level detail.
func (e *Error) WithFields(f ...FieldError) *Error {
	c := *e
	c.Fields = append(append([]FieldError(nil), e.Fields...), f...)
	return &c
}

// WithDetails returns a copy carrying structured detail.
func (e *Error) WithDetails(d any) *Error {
	c := *e
	c.Details = d
	return &c
}

// Invalid is shorthand for a validation failure on named fields.
func Invalid(message string, fields ...FieldError) *Error {
	return &Error{Kind: ErrInvalid, Code: "VALIDATION_FAILED", Message: message, Fields: fields}
}

// NotFound is the answer for anything missing or outside the caller's scope:
// the same answer for both so IDs cannot be probed.
func NotFound(what string) *Error {
	return &Error{Kind: ErrNotFound, Code: "NOT_FOUND", Message: what + "不存在"}
}
