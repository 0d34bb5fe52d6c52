package ocspstate_test

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/ocspstate"
)

// toPrecert moves a reserved record to Precert with resp.
func toPrecert(resp *ocspstate.Response) func(*ocspstate.Record) error {
	return func(r *ocspstate.Record) error {
		r.State = ocspstate.Precert
		r.PrecertDER = []byte{0x30, 0x00}
		r.OCSP.Enabled, r.OCSP.Status = true, ocspstate.Good
		r.SetResponse(resp)
		return nil
	}
}

// resign re-signs the record's response with what the record says (status,
// revocation), after apply changed it.
func resign(signer *ocspstate.ResponseSigner, apply func(*ocspstate.Record)) func(*ocspstate.Record) error {
	return func(r *ocspstate.Record) error {
		apply(r)
		resp, err := signer.SignRecord(r)
		if err != nil {
			return err
		}
		r.SetResponse(resp)
		return nil
	}
}

func keep(*ocspstate.Record) {}

// TestResponseCacheWritesThrough: with the cache on, Response answers what
// the last successful Update stored, at once; a refused Update changes
// nothing; handed-out bytes are copies; a reopened store serves what was
// committed before.
func TestResponseCacheWritesThrough(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	ctx := context.Background()
	opts := ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}, CacheResponses: true}
	s, path := openTemp(t, opts)
	signer := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	r := newReserved(ca, big.NewInt(4711))
	require.NoError(t, s.Reserve(ctx, r))
	_, err := s.Response(ctx, r.Issuer, r.Serial)
	require.ErrorIs(t, err, ocspstate.ErrNotFound, "reserved: no response yet")

	good, err := signer.Sign(r.Serial, ocspstate.Good, time.Time{}, 0)
	require.NoError(t, err)
	_, err = s.Update(ctx, r.Issuer, r.Serial, toPrecert(good))
	require.NoError(t, err)
	got, err := s.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, good.DER, got)
	got[0] ^= 0xff // a copy: the cache keeps its own
	got, err = s.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, good.DER, got)

	revoked, err := signer.Sign(r.Serial, ocspstate.Revoked, time.Now().Add(-time.Minute), ocspstate.ReasonKeyCompromise)
	require.NoError(t, err)
	boom := errors.New("changed my mind")
	_, err = s.Update(ctx, r.Issuer, r.Serial, func(r *ocspstate.Record) error {
		r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, time.Now().Add(-time.Minute), ocspstate.ReasonKeyCompromise
		r.SetResponse(revoked)
		return boom
	})
	require.ErrorIs(t, err, boom)
	got, err = s.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, good.DER, got, "a refused update leaves the cached response alone")

	rec, err := s.Update(ctx, r.Issuer, r.Serial, resign(signer, func(r *ocspstate.Record) {
		r.OCSP.Status, r.OCSP.RevokedAt, r.OCSP.Reason = ocspstate.Revoked, time.Now().Add(-time.Minute).Truncate(time.Second), ocspstate.ReasonKeyCompromise
	}))
	require.NoError(t, err)
	got, err = s.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, rec.OCSP.ResponseDER, got, "the revocation is served as soon as Update returns")

	require.NoError(t, s.Close())
	s2, err := ocspstate.Open(path, opts)
	require.NoError(t, err)
	defer s2.Close()
	got, err = s2.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, rec.OCSP.ResponseDER, got, "loaded at Open")
	_, err = s2.Response(ctx, r.Issuer, big.NewInt(4712))
	require.ErrorIs(t, err, ocspstate.ErrNotFound)

	// A response loaded at Open, then replaced: the new one is served.
	rec, err = s2.Update(ctx, r.Issuer, r.Serial, resign(signer, keep))
	require.NoError(t, err)
	got, err = s2.Response(ctx, r.Issuer, r.Serial)
	require.NoError(t, err)
	require.Equal(t, rec.OCSP.ResponseDER, got, "a re-signed response replaces the one loaded at Open")
}

// TestResponseCacheConcurrent re-signs responses from many writers while
// readers read them (run with -race), then checks that every cached
// answer equals what the file holds, read with the cache off.
func TestResponseCacheConcurrent(t *testing.T) {
	ca := testpki.Shared(t, testpki.ECDSAP256)
	ctx := context.Background()
	opts := ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}, CacheResponses: true}
	s, path := openTemp(t, opts)
	signer := newSigner(t, ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	const n = 64
	var recs []*ocspstate.Record
	for i := range n {
		r := newReserved(ca, big.NewInt(int64(100+i)))
		require.NoError(t, s.Reserve(ctx, r))
		resp, err := signer.SignRecord(r)
		require.NoError(t, err)
		_, err = s.Update(ctx, r.Issuer, r.Serial, toPrecert(resp))
		require.NoError(t, err)
		recs = append(recs, r)
	}
	// Reopen, so that the cache starts loaded and every update replaces
	// an entry.
	require.NoError(t, s.Close())
	s, err := ocspstate.Open(path, opts)
	require.NoError(t, err)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := recs[i%n]
				der, err := s.Response(ctx, r.Issuer, r.Serial)
				if err != nil || len(der) == 0 {
					t.Errorf("serial %v: %v", r.Serial, err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 8 {
		writers.Go(func() {
			for i := w; i < 4*n; i += 8 {
				r := recs[i%n]
				_, err := s.Update(ctx, r.Issuer, r.Serial, resign(signer, keep))
				if err != nil {
					t.Errorf("update %v: %v", r.Serial, err)
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	cached := make([][]byte, n)
	for i, r := range recs {
		var err error
		cached[i], err = s.Response(ctx, r.Issuer, r.Serial)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	plain, err := ocspstate.Open(path, ocspstate.Options{Issuers: opts.Issuers})
	require.NoError(t, err)
	defer plain.Close()
	for i, r := range recs {
		der, err := plain.Response(ctx, r.Issuer, r.Serial)
		require.NoError(t, err)
		require.Equal(t, der, cached[i], "serial %v: the cache says what the file says", r.Serial)
	}
}
