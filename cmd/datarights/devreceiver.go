package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/datarights/datarights/jobs"
	"github.com/datarights/datarights/storage"
	"github.com/datarights/datarights/storage/stores"
)

// devTransferSecret signs `datarights dev`'s transfers to its demo
// receiving handler: dev runs on one machine with demo data only.
const devTransferSecret = "dev-transfer-secret-not-for-production"

// startDevReceiver runs the demo's receiving handler for transfers on a
// loopback port until ctx ends: it checks each push's signature, as a real
// handler must, and keeps the archives it accepts in dir as
// <request-id>.zip. It returns its URL.
func startDevReceiver(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<30))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if _, err := stores.VerifyRequest([]byte(devTransferSecret), r.Method, r.URL.RequestURI(),
			stores.SignatureHeadersFrom(r.Header), body, time.Now(), stores.DefaultSignatureWindow); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(jobs.TransferHeaderRequest)
		if !storage.ValidID(id) {
			http.Error(w, "no request id", http.StatusBadRequest)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, id+".zip"), body, 0o600); err != nil {
			http.Error(w, "cannot store", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "demo transfer receiver:", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return "http://" + ln.Addr().String() + "/transfers", nil
}
