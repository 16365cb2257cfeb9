package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err means the database could not be reached
// or is not taking work (shutting down, starting, out of connections), as
// opposed to a bug: the caller should answer "try again later", not 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &pgErr):
		// 08: connection exception; 57P01-57P03: admin shutdown, crash
		// shutdown, cannot connect now; 53300: too many connections.
		c := pgErr.Code
		return len(c) == 5 && (c[:2] == "08" || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300")
	}
	return pgconn.SafeToRetry(err)
}
