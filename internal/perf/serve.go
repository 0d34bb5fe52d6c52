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
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			return fmt.Errorf("serial %d: status %d", serial, w.code)
		}
		return nil
	})
	return err
}

// discardWriter records the status of a response and drops its body.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
