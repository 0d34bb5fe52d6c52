package realct_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ocsp"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/pipetest"
	"github.com/certpipe/precert/internal/realct"
	"github.com/certpipe/precert/internal/testio"
	"github.com/certpipe/precert/internal/testpki"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
)

// issuances is how many certificates the happy path issues, one after the
// other, so that the latency of one is seen more than once.
const issuances = 3

// TestRealCTLogs issues certificates through the Pipeline against two real
// RFC 6962 logs (Trillian on MariaDB behind the CTFE) and checks what the
// rest of the world would see: the final certificates' SCTs verify with
// certificate-transparency-go's sctcheck and with VerifyEmbedded; each
// precertificate is in each log (signed tree heads grow, get-entries
// returns it, and the Merkle root recomputed from the entries equals the signed one) within the logs'
// maximum merge delay; zlint finds nothing to warn about in precertificate
// or final certificate; and a chain the logs refuse (another CA's root)
// ends CTFailed with the typed CT error and a stored, valid, good OCSP
// response.
func TestRealCTLogs(t *testing.T) {
	ca := testpki.MustNew(t, testpki.ECDSAP256)
	logs := realct.Start(t, testpki.PEM(ca.Root))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	var before []int64
	for i := range logs.Logs {
		before = append(before, int64(getSTH(ctx, t, logs.Logs[i], logs.URLs[i]).TreeSize))
	}

	env := newEnv(t, ca, logs, []*x509.Certificate{ca.Intermediate, ca.Root})
	var results []*issuance.Result
	var timings []timing
	for range issuances {
		key, err := testpki.NewKey(ca.KeyType)
		require.NoError(t, err)
		res, tm := env.issue(ctx, t, request(key.Public(), time.Now()))
		require.Equal(t, ocspstate.Issued, res.State)
		require.Len(t, res.SCTs, len(logs.Logs), "one SCT per log")
		results = append(results, res)
		timings = append(timings, tm)
	}
	reportLatency(t, timings)

	// A crash right after CT (simulated: the step fails there): the SCTs
	// are lost, the record stays Precert, and recovery submits the same
	// precertificate again. A real log deduplicates it and answers with
	// an SCT for the entry it already has.
	env.failAfterCT.Store(true)
	key, err := testpki.NewKey(ca.KeyType)
	require.NoError(t, err)
	_, err = env.pipeline.Issue(ctx, request(key.Public(), time.Now()))
	require.ErrorIs(t, err, issuance.ErrInjected)
	var ie *issuance.Error
	require.ErrorAs(t, err, &ie)
	rec, err := env.store.Get(ctx, env.pipeline.IssuerID(), ie.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Precert, rec.State)
	res, err := env.pipeline.Resume(ctx, env.pipeline.IssuerID(), ie.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.Issued, res.State)
	results = append(results, res)
	require.EqualValues(t, (issuances+2)*len(logs.Logs), env.submissions.Load(), "every add-pre-chain request was checked for I1")

	// The default chain is the issuer alone: the logs complete the path
	// to the root they hold (and record it, checked below).
	short := newEnv(t, ca, logs, nil)
	key, err = testpki.NewKey(ca.KeyType)
	require.NoError(t, err)
	res, _ = short.issue(ctx, t, request(key.Public(), time.Now()))
	require.Equal(t, ocspstate.Issued, res.State)
	results = append(results, res)

	// A CA whose root neither log trusts: rejected by both, CTFailed, OCSP
	// good. Issued before waiting for the merge, so that a log that took
	// the chain would be caught publishing it below.
	other := testpki.MustNew(t, testpki.ECDSAP256)
	t.Run("unknown root", func(t *testing.T) {
		testUnknownRoot(ctx, t, other, logs)
	})

	t.Run("in the logs", func(t *testing.T) {
		for i := range logs.Logs {
			testInLog(ctx, t, logs, i, before[i], results, ca, other)
		}
	})

	t.Run("embedded SCTs", func(t *testing.T) {
		for i, res := range results {
			embedded, err := ctsubmit.VerifyEmbedded(res.Final, ca.Intermediate, logs.Logs)
			require.NoError(t, err, "certificate %d", i)
			require.Len(t, embedded, len(logs.Logs))
			require.NoError(t, ctsubmit.DefaultPolicy().Check(validity(res.Final), embedded, time.Now()))
			n, out := sctcheck(ctx, t, logs, res.Final, ca)
			require.Equal(t, len(logs.Logs), n, "sctcheck validated %d of the SCTs of certificate %d:\n%s", n, i, out)
		}
	})

	t.Run("zlint", func(t *testing.T) {
		for i, res := range results {
			zlintClean(ctx, t, logs, fmt.Sprintf("precert%d", i), res.Precert)
			zlintClean(ctx, t, logs, fmt.Sprintf("final%d", i), res.Final)
		}
		t.Run("finds errors", func(t *testing.T) {
			// The harness itself can fail: a 500-day TLS certificate
			// breaks the Baseline Requirements' 398-day limit.
			key, err := testpki.NewKey(ca.KeyType)
			require.NoError(t, err)
			bad, err := ca.IssueLeaf(ca.LeafTemplate(500*24*time.Hour, "long.precert.test"), key.Public())
			require.NoError(t, err)
			findings := zlint(ctx, t, logs, "too-long", bad)
			require.NotEmpty(t, findings, "zlint should flag a 500-day certificate")
		})
	})
}

// request is a 90-day DV request with nothing zlint warns about: no
// subject common name (BR §7.1.4.3: NOT RECOMMENDED), and AIA and CRL URLs
// under a public suffix (w_sub_cert_aia_contains_internal_names).
func request(pub crypto.PublicKey, now time.Time) *issuance.Request {
	notBefore := now.UTC().Truncate(time.Second).Add(-time.Hour)
	return &issuance.Request{
		PublicKey:             pub,
		DNSNames:              []string{"www.example.com", "example.com"},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(90*24*time.Hour - time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Policies:              []x509.OID{testpki.DomainValidated},
		OCSPServer:            []string{"http://ocsp.example.com/"},
		IssuingCertificateURL: []string{"http://ca.example.com/issuer.der"},
		CRLDistributionPoints: []string{"http://ca.example.com/issuer.crl"},
	}
}

// zlintSources are the lint sources of DESIGN.md.
const zlintSources = "CABF_BR,RFC5280,RFC6962,Mozilla,Chrome"

// zlintIgnore resolves the one contradiction between those sources for
// subscriber certificates: RFC 5280 §4.2.1.2 says end-entity certificates
// SHOULD carry a subject key identifier
// (w_ext_subject_key_identifier_missing_sub_cert), the Baseline
// Requirements §7.1.2.7.6 say NOT RECOMMENDED
// (w_ext_subject_key_identifier_not_recommended_subscriber). The BRs win.
var zlintIgnore = []string{"w_ext_subject_key_identifier_missing_sub_cert"}

// env is a pipeline wired to the real logs: a bbolt store, a response
// signer, a Submitter whose HTTP client checks invariant I1 at every
// add-pre-chain request and times it, and a fault injector that only
// records when each step ended.
type env struct {
	ca       *testpki.CA
	store    *ocspstate.BoltStore
	pipeline *issuance.Pipeline
	logBuf   *testio.Buffer

	submissions atomic.Int64
	failAfterCT atomic.Bool
	mu          sync.Mutex
	steps       []stepMark
	requests    []httpRequest
}

type stepMark struct {
	point issuance.FaultPoint
	at    time.Time
}

type httpRequest struct {
	url    string
	status int
	took   time.Duration
}

// newEnv wires a pipeline for ca that sends chain after each
// precertificate (nil: the issuer alone).
func newEnv(t *testing.T, ca *testpki.CA, logs *realct.Logs, chain []*x509.Certificate) *env {
	t.Helper()
	e := &env{ca: ca, logBuf: &testio.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pipeline and submitter log:\n%s", e.logBuf.String())
		}
	})
	logger := slog.New(slog.NewTextHandler(e.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.store, err = ocspstate.Open(filepath.Join(t.TempDir(), "ocsp.db"), ocspstate.Options{Issuers: []*x509.Certificate{ca.Intermediate}})
	require.NoError(t, err)
	t.Cleanup(func() { e.store.Close() })
	signer, err := ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: ca.Intermediate, Key: ca.IntermediateKey})
	require.NoError(t, err)
	// The pipeline's own zlint run refuses warnings too, so that a
	// warning stops issuance before the CLI below would see it.
	linter, err := issuance.NewZLinter(issuance.ZLintConfig{FailOnWarn: true, Ignore: zlintIgnore})
	require.NoError(t, err)
	sub, err := ctsubmit.New(ctsubmit.Config{
		Logs:           logs.Logs,
		PerLogTimeout:  20 * time.Second,
		OverallTimeout: 45 * time.Second,
		Logger:         logger,
		HTTPClient:     &http.Client{Transport: e.watch(t, http.DefaultTransport.(*http.Transport).Clone())},
	})
	require.NoError(t, err)
	e.pipeline, err = issuance.New(issuance.Config{
		Store:     e.store,
		Issuer:    ca.Intermediate,
		IssuerKey: ca.IntermediateKey,
		Chain:     chain,
		Responses: signer,
		CT:        sub,
		Linter:    linter,
		Logger:    logger,
		Faults: issuance.FaultFunc(func(_ context.Context, p issuance.FaultPoint, _ *big.Int) error {
			e.mu.Lock()
			e.steps = append(e.steps, stepMark{p, time.Now()})
			e.mu.Unlock()
			if p == issuance.AfterCT && e.failAfterCT.CompareAndSwap(true, false) {
				return fmt.Errorf("%w: simulated crash after CT", issuance.ErrInjected)
			}
			return nil
		}),
	})
	require.NoError(t, err)
	return e
}

// watch checks, when a precertificate is about to reach a log, that its
// record is durable in a published state with OCSP enabled and a stored
// response that validates (invariant I1), and times each request.
func (e *env) watch(t *testing.T, next http.RoundTripper) http.RoundTripper {
	checked := pipetest.WatchSubmissions(next, func(serial *big.Int) {
		pipetest.CheckCommitted(t, e.store, e.ca.Intermediate, serial, time.Now())
		e.submissions.Add(1)
	})
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		t0 := time.Now()
		resp, err := checked.RoundTrip(req)
		r := httpRequest{url: req.URL.String(), took: time.Since(t0)}
		if resp != nil {
			r.status = resp.StatusCode
		}
		e.mu.Lock()
		e.requests = append(e.requests, r)
		e.mu.Unlock()
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// timing is where the time of one Issue call went.
type timing struct {
	total time.Duration
	// steps are the durations between consecutive fault points, named
	// by the step that ended at each, and the time from the last one to
	// Issue's return.
	steps []stepTime
	// requests are the add-pre-chain requests made, with their latency.
	requests []httpRequest
}

type stepTime struct {
	name string
	took time.Duration
}

// ct is the time spent in CT submission: from the precertificate's commit
// to the SCTs being in memory.
func (tm timing) ct() time.Duration {
	for _, s := range tm.steps {
		if s.name == string(issuance.AfterCT) {
			return s.took
		}
	}
	return 0
}

func (e *env) issue(ctx context.Context, t *testing.T, req *issuance.Request) (*issuance.Result, timing) {
	t.Helper()
	e.mu.Lock()
	e.steps, e.requests = nil, nil
	e.mu.Unlock()
	start := time.Now()
	res, err := e.pipeline.Issue(ctx, req)
	end := time.Now()
	require.NoError(t, err)
	e.mu.Lock()
	defer e.mu.Unlock()
	tm := timing{total: end.Sub(start), requests: slices.Clone(e.requests)}
	prev := start
	for _, m := range e.steps {
		tm.steps = append(tm.steps, stepTime{string(m.point), m.at.Sub(prev)})
		prev = m.at
	}
	tm.steps = append(tm.steps, stepTime{"return", end.Sub(prev)})
	return res, tm
}

// reportLatency logs where the time of each issuance went. It asserts
// nothing: timings on a shared machine are for reading, not for failing.
func reportLatency(t *testing.T, timings []timing) {
	t.Helper()
	var b strings.Builder
	for i, tm := range timings {
		c := tm.ct()
		fmt.Fprintf(&b, "issuance %d: %s end to end; CT submission %s (%.0f%%), the rest %s\n",
			i+1, ms(tm.total), ms(c), 100*float64(c)/float64(tm.total), ms(tm.total-c))
		for _, s := range tm.steps {
			fmt.Fprintf(&b, "    %-22s %s\n", s.name, ms(s.took))
		}
		for _, r := range tm.requests {
			fmt.Fprintf(&b, "    POST %s -> %d in %s\n", r.url, r.status, ms(r.took))
		}
	}
	totals := make([]time.Duration, len(timings))
	cts := make([]time.Duration, len(timings))
	for i, tm := range timings {
		totals[i], cts[i] = tm.total, tm.ct()
	}
	mt, mc := median(totals), median(cts)
	fmt.Fprintf(&b, "median of %d: %s end to end, of which CT submission %s (%.0f%%)", len(timings), ms(mt), ms(mc), 100*float64(mc)/float64(mt))
	t.Logf("latency against the two logs (steps end at their fault point):\n%s", b.String())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func validity(c *x509.Certificate) ctsubmit.Validity {
	return ctsubmit.Validity{NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

// testUnknownRoot issues from a CA the logs do not trust. Both CTFEs must
// refuse the chain; the pipeline must return the typed CT error and leave
// the precertificate CTFailed with a valid, good OCSP response stored.
func testUnknownRoot(ctx context.Context, t *testing.T, other *testpki.CA, logs *realct.Logs) {
	e := newEnv(t, other, logs, []*x509.Certificate{other.Intermediate, other.Root})
	key, err := testpki.NewKey(other.KeyType)
	require.NoError(t, err)
	res, err := e.pipeline.Issue(ctx, request(key.Public(), time.Now()))
	require.Nil(t, res)
	ie, ce := pipetest.RequireCTFailed(t, err, len(logs.Logs))
	require.Zero(t, ce.Got)
	for i, le := range ce.Logs {
		require.Same(t, logs.Logs[i], le.Log)
		require.Equal(t, http.StatusBadRequest, le.Status, "%v", le)
		require.NotEmpty(t, le.Body)
	}
	t.Logf("the typed CT error, as the pipeline returned it:\n%v", err)
	require.EqualValues(t, len(logs.Logs), e.submissions.Load(), "the precertificate was committed before each log saw it (I1)")

	r, err := e.store.Get(ctx, ocspstate.IssuerIDOf(other.Intermediate), ie.Serial)
	require.NoError(t, err)
	require.Equal(t, ocspstate.CTFailed, r.State)
	require.True(t, r.OCSP.Enabled)
	require.NotEmpty(t, r.PrecertDER)
	info, err := ocspstate.Validate(r.OCSP.ResponseDER, other.Intermediate, ocspstate.ExpectRecord(r, time.Now(), time.Minute))
	require.NoError(t, err)
	require.Equal(t, ocspstate.Good, info.Status)
	// And as a relying party's library reads it.
	resp, err := ocsp.ParseResponseForCert(r.OCSP.ResponseDER, nil, other.Intermediate)
	require.NoError(t, err)
	require.Equal(t, ocsp.Good, resp.Status)
	require.Zero(t, resp.SerialNumber.Cmp(ie.Serial))
	require.True(t, resp.NextUpdate.After(time.Now()))
}

// getSTH fetches a log's signed tree head and verifies its signature.
func getSTH(ctx context.Context, t *testing.T, l *ctsubmit.Log, base string) *ct.SignedTreeHead {
	t.Helper()
	var resp ct.GetSTHResponse
	require.NoError(t, getJSON(ctx, base+ct.GetSTHPath, &resp))
	sth, err := resp.ToSignedTreeHead()
	require.NoError(t, err)
	pub, err := x509.ParsePKIXPublicKey(l.Key)
	require.NoError(t, err)
	v, err := ct.NewSignatureVerifier(pub)
	require.NoError(t, err)
	require.NoError(t, v.VerifySTHSignature(*sth), "STH of %s", l.Name)
	return sth
}

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.300s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// testInLog waits, within the log's maximum merge delay from the latest
// SCT it issued, for log i's tree to grow by one entry per certificate,
// then reads every entry and finds each precertificate there, as the SCT
// promised: same timestamp, same TBS, same issuer key hash, and the
// submitted precertificate and chain as extra data. The rejected CA's
// precertificate must not be there.
func testInLog(ctx context.Context, t *testing.T, logs *realct.Logs, i int, before int64, results []*issuance.Result, ca, rejected *testpki.CA) {
	t.Helper()
	l, base := logs.Logs[i], logs.URLs[i]
	var latest time.Time
	sctOf := make([]*ct.SignedCertificateTimestamp, len(results))
	for j, res := range results {
		raws, err := ctsubmit.ParseSCTList(sctListOf(t, res.Final))
		require.NoError(t, err)
		for _, raw := range raws {
			var s ct.SignedCertificateTimestamp
			_, err := cttls.Unmarshal(raw, &s)
			require.NoError(t, err)
			if s.LogID.KeyID == l.ID() {
				require.Nil(t, sctOf[j], "certificate %d carries two SCTs from %s", j, l.Name)
				sctOf[j] = &s
			}
		}
		require.NotNil(t, sctOf[j], "certificate %d carries no SCT from %s", j, l.Name)
		if ts := time.UnixMilli(int64(sctOf[j].Timestamp)); ts.After(latest) {
			latest = ts
		}
	}
	want := before + int64(len(results))
	deadline := latest.Add(logs.MMD)
	var sth *ct.SignedTreeHead
	for {
		sth = getSTH(ctx, t, l, base)
		if int64(sth.TreeSize) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: tree size %d, want %d, %s after the latest SCT (maximum merge delay %s)",
				l.Name, sth.TreeSize, want, time.Since(latest).Round(time.Millisecond), logs.MMD)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s: tree size %d → %d, seen merged %s after the latest SCT (maximum merge delay %s)",
		l.Name, before, sth.TreeSize, time.Since(latest).Round(time.Millisecond), logs.MMD)
	require.EqualValues(t, want, sth.TreeSize, "%s holds each precertificate issued once, the resubmitted one too", l.Name)

	var entries []*ct.RawLogEntry
	var hashes [][sha256.Size]byte
	for start := int64(0); start < int64(sth.TreeSize); {
		var resp ct.GetEntriesResponse
		require.NoError(t, getJSON(ctx, fmt.Sprintf("%s%s?start=%d&end=%d", base, ct.GetEntriesPath, start, sth.TreeSize-1), &resp))
		require.NotEmpty(t, resp.Entries)
		for k := range resp.Entries {
			e, err := ct.RawLogEntryFromLeaf(start+int64(k), &resp.Entries[k])
			require.NoError(t, err)
			entries = append(entries, e)
			hashes = append(hashes, leafHash(resp.Entries[k].LeafInput))
		}
		start += int64(len(resp.Entries))
	}
	// The entries are the tree the log signed: their Merkle tree hash is
	// the signed root hash, so each entry below is included in it.
	require.Equal(t, sth.SHA256RootHash, ct.SHA256Hash(treeHash(hashes)), "%s: get-entries does not add up to the signed tree head", l.Name)
	issuerKeyHash := sha256.Sum256(ca.Intermediate.RawSubjectPublicKeyInfo)
	rejectedHash := sha256.Sum256(rejected.Intermediate.RawSubjectPublicKeyInfo)
	for j, res := range results {
		leaf, err := ctsubmit.PrecertLeaf([][]byte{res.Precert.Raw, ca.Intermediate.Raw})
		require.NoError(t, err)
		found := false
		for _, e := range entries {
			te := e.Leaf.TimestampedEntry
			if te.EntryType != ct.PrecertLogEntryType || te.PrecertEntry == nil ||
				!bytes.Equal(te.PrecertEntry.TBSCertificate, leaf.TimestampedEntry.PrecertEntry.TBSCertificate) {
				continue
			}
			found = true
			require.Equal(t, sctOf[j].Timestamp, te.Timestamp, "%s entry %d: timestamp differs from the SCT's", l.Name, e.Index)
			require.Equal(t, issuerKeyHash, te.PrecertEntry.IssuerKeyHash)
			require.Equal(t, res.Precert.Raw, e.Cert.Data, "%s entry %d: the precertificate submitted", l.Name, e.Index)
			require.NotEmpty(t, e.Chain)
			require.Equal(t, ca.Intermediate.Raw, e.Chain[0].Data, "%s entry %d: chain starts at the issuer", l.Name, e.Index)
			require.Equal(t, ca.Root.Raw, e.Chain[len(e.Chain)-1].Data, "%s entry %d: chain ends at the root", l.Name, e.Index)
		}
		require.True(t, found, "%s: precertificate %d (serial %x) not among its %d entries", l.Name, j, res.Serial, len(entries))
	}
	for _, e := range entries {
		if pe := e.Leaf.TimestampedEntry.PrecertEntry; pe != nil && pe.IssuerKeyHash == rejectedHash {
			t.Errorf("%s: entry %d is the rejected CA's precertificate", l.Name, e.Index)
		}
	}
}

// leafHash is RFC 6962 §2.1's hash of a leaf: SHA-256(0x00 || leaf).
func leafHash(leafInput []byte) [sha256.Size]byte {
	return sha256.Sum256(append([]byte{0}, leafInput...))
}

// treeHash is RFC 6962 §2.1's Merkle Tree Hash over leaf hashes.
func treeHash(leaves [][sha256.Size]byte) [sha256.Size]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	left, right := treeHash(leaves[:k]), treeHash(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, left[:]...), right[:]...))
}

func sctListOf(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	for _, e := range c.Extensions {
		if e.Id.Equal(ctsubmit.OIDSCTList) {
			return e.Value
		}
	}
	t.Fatal("no SCT list extension")
	return nil
}

var sctcheckFound = regexp.MustCompile(`Found (\d+) embedded SCTs for "[^"]*", of which (\d+) were validated`)

// sctcheck runs certificate-transparency-go's sctcheck on final and its
// issuer with the generated log list, offline, and returns how many
// embedded SCTs it validated. It exits 0 even when a certificate has no
// SCT at all, so the count is what matters. (Its inclusion check cannot
// run here: it prefixes "https://" to every log URL that lacks it, and
// these logs speak plain HTTP; testInLog checks inclusion instead.)
func sctcheck(ctx context.Context, t *testing.T, logs *realct.Logs, final *x509.Certificate, ca *testpki.CA) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chain.pem")
	require.NoError(t, os.WriteFile(path, testpki.PEM(final, ca.Intermediate), 0o644))
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, logs.Tool("sctcheck"), "--log_list="+logs.LogListPath,
		"--check_inclusion=false", path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "sctcheck:\n%s", out)
	m := sctcheckFound.FindSubmatch(out)
	require.NotNil(t, m, "no summary line in sctcheck's output:\n%s", out)
	found, _ := strconv.Atoi(string(m[1]))
	valid, _ := strconv.Atoi(string(m[2]))
	require.Equal(t, len(logs.Logs), found, "sctcheck found %d SCTs:\n%s", found, out)
	return valid, string(out)
}

// zlint runs the zlint CLI on cert and returns every finding at warn level
// or above, as "lint: result (details)".
func zlint(ctx context.Context, t *testing.T, logs *realct.Logs, name string, cert *x509.Certificate) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".pem")
	require.NoError(t, os.WriteFile(path, testpki.PEM(cert), 0o644))
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, logs.Tool("zlint"), "-includeSources", zlintSources,
		"-excludeNames", strings.Join(zlintIgnore, ","), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "zlint: %s", stderr.String())
	var results map[string]struct {
		Result  string `json:"result"`
		Details string `json:"details"`
	}
	require.NoError(t, json.Unmarshal(out, &results), "zlint output: %.500s", out)
	counts := map[string]int{}
	var findings []string
	for lint, r := range results {
		counts[r.Result]++
		switch r.Result {
		case "pass", "NA", "NE", "info":
		default:
			findings = append(findings, fmt.Sprintf("%s: %s (%s)", lint, r.Result, r.Details))
		}
	}
	sort.Strings(findings)
	// Hundreds of lints apply to a TLS server certificate: a handful
	// would mean the sources were not understood.
	require.Greater(t, counts["pass"], 50, "zlint passed only %d lints on %s: %v", counts["pass"], name, counts)
	t.Logf("zlint %s (%s): %v", name, zlintSources, counts)
	return findings
}

func zlintClean(ctx context.Context, t *testing.T, logs *realct.Logs, name string, cert *x509.Certificate) {
	t.Helper()
	if findings := zlint(ctx, t, logs, name, cert); len(findings) > 0 {
		t.Errorf("zlint on %s:\n  %s", name, strings.Join(findings, "\n  "))
	}
}
