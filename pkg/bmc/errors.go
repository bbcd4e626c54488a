package bmc

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// Sentinel errors. Errors returned by this package wrap one of them, so
// callers can test with errors.Is.
var (
	// ErrInvalidURL: the BMC URL cannot be parsed or is incomplete.
	ErrInvalidURL = errors.New("invalid bmc url")
	// ErrUnsupported: the BMC or its protocol does not offer the operation.
	ErrUnsupported = errors.New("operation not supported by this bmc")
	// ErrAuth: the BMC rejected the user name or password. Never retried.
	ErrAuth = errors.New("bmc rejected the credentials")
	// ErrUnreachable: nothing answers at the BMC address (connection
	// refused or reset, no route). Retried with backoff.
	ErrUnreachable = errors.New("bmc unreachable")
	// ErrNoSession: an IPMI session could not be established. ipmitool
	// reports a wrong password and an unreachable BMC with the same
	// message, so this is not retried (retrying a wrong password can lock
	// the account on real BMCs).
	ErrNoSession = errors.New("ipmi session could not be established (bmc unreachable or credentials rejected)")
	// ErrTimeout: the BMC did not answer within the configured timeout.
	ErrTimeout = errors.New("bmc did not answer in time")
	// ErrBMC: the BMC answered but reported a failure.
	ErrBMC = errors.New("bmc reported a failure")
	// ErrToolMissing: a required local tool (ipmitool) is not installed.
	ErrToolMissing = errors.New("required tool missing")
)

// opError is the error type this package returns. Its message has been
// scrubbed of the endpoint's password; it unwraps only to the sentinel
// class (and to context errors), never to the raw third-party error,
// whose text may echo credentials.
type opError struct {
	msg   string
	class error
	also  error // a second class, e.g. ErrNoSession refined to ErrAuth
	ctx   error
}

func (e *opError) Error() string { return e.msg }

func (e *opError) Unwrap() []error {
	errs := []error{e.class}
	if e.also != nil {
		errs = append(errs, e.also)
	}
	if e.ctx != nil {
		errs = append(errs, e.ctx)
	}
	return errs
}

// wrapErr builds the scrubbed error for op on ep from a raw error.
func wrapErr(ep Endpoint, op string, raw error) error {
	if raw == nil {
		return nil
	}
	var already *opError
	if errors.As(raw, &already) {
		return raw
	}
	class := classify(ep, raw)
	var ctxErr error
	if errors.Is(raw, context.Canceled) {
		ctxErr = context.Canceled
	}
	if class == ErrTimeout {
		ctxErr = context.DeadlineExceeded
	}
	detail := scrub(ep, raw.Error())
	msg := "bmc " + ep.Redacted() + ": " + op + ": " + class.Error()
	if detail != "" && detail != class.Error() {
		msg += ": " + detail
	}
	return &opError{msg: msg, class: class, ctx: ctxErr}
}

// classify maps a raw error from bmclib, gofish, ipmitool or the network
// onto one of the sentinel errors.
func classify(ep Endpoint, err error) error {
	for _, s := range []error{ErrInvalidURL, ErrUnsupported, ErrAuth, ErrUnreachable, ErrNoSession, ErrTimeout, ErrBMC, ErrToolMissing} {
		if errors.Is(err, s) {
			return s
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return ErrTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return ErrUnreachable
	}
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "context deadline exceeded"), strings.Contains(m, "timeout awaiting"),
		strings.Contains(m, "client.timeout exceeded"), strings.Contains(m, "i/o timeout"),
		strings.Contains(m, "signal: killed"):
		return ErrTimeout
	case strings.Contains(m, "401"), strings.Contains(m, "unauthorized"),
		strings.Contains(m, "403 forbidden"), strings.Contains(m, "authentication failed"):
		return ErrAuth
	case strings.Contains(m, "unable to establish ipmi v2 / rmcp+ session"),
		strings.Contains(m, "unable to establish lan session"):
		return ErrNoSession
	case strings.Contains(m, "connection refused"), strings.Contains(m, "connection reset"),
		strings.Contains(m, "no route to host"), strings.Contains(m, "network is unreachable"),
		strings.Contains(m, "eof"):
		return ErrUnreachable
	case strings.Contains(m, "executable file not found"):
		return ErrToolMissing
	}
	return ErrBMC
}

// transient reports whether an error class is worth a retry.
func transient(err error) bool {
	return errors.Is(err, ErrUnreachable) || isServerBusy(err)
}

func isServerBusy(err error) bool {
	m := err.Error()
	return errors.Is(err, ErrBMC) && (strings.Contains(m, "503") || strings.Contains(m, "502") || strings.Contains(m, "504"))
}

// scrub removes every spelling of the endpoint's password from s.
func scrub(ep Endpoint, s string) string {
	p := ep.Password
	if p == "" {
		return s
	}
	repl := []string{}
	add := func(v string) {
		if v != "" {
			repl = append(repl, v, redactedPassword)
		}
	}
	add(base64.StdEncoding.EncodeToString([]byte(ep.Username + ":" + p)))
	add(url.UserPassword(ep.Username, p).String())
	if len(p) >= 3 { // shorter strings would mangle unrelated text
		add(url.QueryEscape(p))
		add(url.PathEscape(p))
		add(p)
	}
	if len(repl) == 0 {
		return s
	}
	return strings.NewReplacer(repl...).Replace(s)
}

// refineIPMI turns an ambiguous IPMI session failure into ErrAuth (the BMC
// answers, so it rejected the credentials) or ErrUnreachable (nothing
// answers). The result still matches ErrNoSession.
func refineIPMI(ctx context.Context, ep Endpoint, err error) error {
	var oe *opError
	if ep.Protocol != ProtocolIPMI || !errors.Is(err, ErrNoSession) || !errors.As(err, &oe) {
		return err
	}
	if ipmiAnswers(ctx, ep.Address()) {
		return &opError{msg: oe.msg + " (the bmc answers: wrong user, password or cipher suite)", class: ErrAuth, also: ErrNoSession}
	}
	return &opError{msg: oe.msg + " (nothing answers at " + ep.Address() + ")", class: ErrUnreachable, also: ErrNoSession}
}
