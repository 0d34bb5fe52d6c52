package perf

import (
	"bytes"
	"fmt"
	"math/big"
	"net/http"
	"runtime"
	"strconv"
)

// FixedBody is the responder benchmarks' baseline: a handler that answers
// every request with the same size bytes, with only the Content-Type and
// Content-Length an OCSP response needs.
func FixedBody(size int) http.Handler {
	body := bytes.Repeat([]byte{0x30}, size)
	length := strconv.Itoa(size)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
}

// Warm has h answer a POST for every serial base … base+n-1 (SHA-1 CertID
// naming the issuer by nameHash and keyHash) on all cores, as a responder
// that has been up for a while has: every response validated once. Every
// answer must be 200.
func Warm(h http.Handler, nameHash, keyHash []byte, base *big.Int, n int) error {
	_, err := Parallel(n, runtime.GOMAXPROCS(0), func(i int) error {
		serial := new(big.Int).Add(base, big.NewInt(int64(i)))
		r, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(OCSPRequest(nameHash, keyHash, serial)))
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/ocsp-request")
		w := &DiscardWriter{}
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			return fmt.Errorf("serial %d: status %d", serial, w.Code)
		}
		return nil
	})
	return err
}

// DiscardWriter is an http.ResponseWriter that records the status of a
// response and drops its body, for calling handlers in process.
type DiscardWriter struct {
	h    http.Header
	Code int // the status written, or 0
}

// Header implements http.ResponseWriter.
func (w *DiscardWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

// WriteHeader implements http.ResponseWriter.
func (w *DiscardWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
}

// Write implements http.ResponseWriter.
func (w *DiscardWriter) Write(p []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return len(p), nil
}

// Reset readies w for another response.
func (w *DiscardWriter) Reset() {
	clear(w.h)
	w.Code = 0
}
