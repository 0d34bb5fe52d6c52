package ctsubmit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/integration"
	"github.com/certpipe/precert/internal/testio"
)

const ctTestSrvInstall = "install it with: go install github.com/letsencrypt/boulder/test/ct-test-srv@v0.20260921.0"

// ctTestSrvPath finds Let's Encrypt's ct-test-srv on PATH or in
// $(go env GOPATH)/bin, or skips (fails under PRECERT_INTEGRATION=1).
func ctTestSrvPath(t *testing.T) string {
	t.Helper()
	return integration.LookPath(t, "ct-test-srv", ctTestSrvInstall)
}

// ctTestSrv is a running ct-test-srv with several personalities (logs).
type ctTestSrv struct {
	logs  []*ctsubmit.Log
	addrs []string
}

// startCTTestSrv writes a config with fresh P-256 keys for n logs on free
// loopback ports, starts ct-test-srv, waits until every log answers, and
// stops it by PID when the test ends.
func startCTTestSrv(t *testing.T, n int) *ctTestSrv {
	t.Helper()
	bin := ctTestSrvPath(t)
	type personality struct {
		Addr    string
		PrivKey string
	}
	srv := &ctTestSrv{}
	var cfg struct{ Personalities []personality }
	for i := range n {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		require.NoError(t, err)
		addr := freeLoopbackAddr(t)
		cfg.Personalities = append(cfg.Personalities, personality{Addr: addr, PrivKey: base64.StdEncoding.EncodeToString(der)})
		srv.addrs = append(srv.addrs, addr)
		srv.logs = append(srv.logs, &ctsubmit.Log{
			Name:     fmt.Sprintf("ct-test-srv %d", i),
			Operator: fmt.Sprintf("Operator %d", i),
			URL:      "http://" + addr,
			Key:      pub,
		})
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ct-test-srv.json")
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfgPath, data, 0o600))

	var out testio.Buffer
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Stop it by PID: SIGTERM, which it waits for, then SIGKILL.
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("ct-test-srv output:\n%s", out.String())
		}
	})

	// Readiness: every personality answers GET /submissions.
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range srv.addrs {
		for {
			resp, err := http.Get("http://" + addr + "/submissions?hostnames=none")
			if err == nil {
				_ = resp.Body.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("ct-test-srv exited (%v):\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("ct-test-srv did not listen on %s: %v\n%s", addr, err, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return srv
}

// freeLoopbackAddr returns a loopback address whose port was free a moment
// ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// post sends a JSON body to one of ct-test-srv's test endpoints.
func (s *ctTestSrv) post(t *testing.T, i int, path string, body any) {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post("http://"+s.addrs[i]+path, "application/json", bytes.NewReader(data))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// get returns the body of a GET to one of ct-test-srv's test endpoints.
func (s *ctTestSrv) get(t *testing.T, i int, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.addrs[i] + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestCTTestSrv submits to Let's Encrypt's ct-test-srv: its SCTs verify
// with its keys, embed and verify in the final certificate; after
// /add-reject-host every log rejects, and Submit says so per log.
func TestCTTestSrv(t *testing.T) {
	srv := startCTTestSrv(t, 3)
	s := newSubmitter(t, ctsubmit.Config{Logs: srv.logs, PerLogTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("accepts", func(t *testing.T) {
		p := precert(t, 200*day, "accept.precert.test") // > 180 days: three SCTs
		scts, err := s.Submit(ctx, p.Chain, p.Cert.NotAfter)
		require.NoError(t, err)
		require.Len(t, scts, 3)
		for i, sct := range scts {
			require.Same(t, srv.logs[i], sct.Log)
			require.NoError(t, ctsubmit.VerifySCT(srv.logs[i], p.Chain, sct.Parsed))
			require.Equal(t, "1", srv.get(t, i, "/submissions?hostnames=accept.precert.test"))
		}
		final, err := p.Final(mustExt(t, raws(scts)))
		require.NoError(t, err)
		embedded, err := ctsubmit.VerifyEmbedded(final, p.CA.Intermediate, srv.logs)
		require.NoError(t, err)
		require.Len(t, embedded, 3)
	})

	t.Run("one log rejects", func(t *testing.T) {
		p := precert(t, 90*day, "one.precert.test")
		srv.post(t, 0, "/add-reject-host", map[string]string{"host": "one.precert.test"})
		scts, err := s.Submit(ctx, p.Chain, p.Cert.NotAfter)
		require.NoError(t, err)
		require.Equal(t, []string{"ct-test-srv 1", "ct-test-srv 2"}, names(scts))
		requireValid(t, p, scts)
	})

	t.Run("every log rejects", func(t *testing.T) {
		p := precert(t, 90*day, "reject.precert.test")
		for i := range srv.logs {
			srv.post(t, i, "/add-reject-host", map[string]string{"host": "reject.precert.test"})
		}
		scts, err := s.Submit(ctx, p.Chain, p.Cert.NotAfter)
		require.Nil(t, scts)
		var e *ctsubmit.Error
		require.True(t, errors.As(err, &e), "%v", err)
		require.Len(t, e.Logs, 3)
		for i, le := range e.Logs {
			require.Same(t, srv.logs[i], le.Log)
			require.Equal(t, ctsubmit.KindRejected, le.Kind)
			require.Equal(t, http.StatusBadRequest, le.Status)
			var rejected []string
			require.NoError(t, json.Unmarshal([]byte(srv.get(t, i, "/get-rejections")), &rejected))
			require.Contains(t, rejected, base64.StdEncoding.EncodeToString(p.Chain[0]))
		}
		t.Log(err)
	})
}
