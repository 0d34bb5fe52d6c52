package responder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certpipe/precert/ocspstate"
	"golang.org/x/crypto/ocsp"
)

// ProbeTarget is a certificate [Prober.Probe] asks about, and the status
// its response must carry.
type ProbeTarget struct {
	// Cert is a final certificate or a precertificate (RFC 6962 poison
	// extension); it must be signed by one of the issuers given to Probe.
	Cert *x509.Certificate
	// WantStatus is the status the response must say: ocspstate.Good or
	// ocspstate.Revoked. Zero means Good. For a precertificate this is
	// whatever the caller knows it to be: a precertificate whose CT
	// submission failed is still good until revoked (invariant I2).
	WantStatus ocspstate.Status
}

// Prober checks a live OCSP responder from the outside, the way relying
// parties see it. The zero value is ready to use.
type Prober struct {
	// Client sends the requests. Nil means a client that does not follow
	// redirects (OCSP clients do not). Whatever the client, every request
	// carries a deadline of Timeout.
	Client *http.Client
	// Timeout bounds each HTTP request. Zero means 10 seconds.
	Timeout time.Duration
	// CertIDHash is the hash algorithm of the requests' CertIDs:
	// crypto.SHA1 (the zero value, what RFC 5019 clients send) or
	// crypto.SHA256.
	CertIDHash crypto.Hash
	// Skew is the clock tolerance: how far ahead thisUpdate may be, and
	// how far past nextUpdate the advertised cache lifetime may reach.
	// Zero means DefaultSkew (five minutes); negative means none.
	Skew time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Report is the outcome of a probe: every check made, in order.
type Report struct {
	// URL is the responder probed.
	URL string
	// Started is when the probe began.
	Started time.Time
	// Checks lists every check, passed or failed.
	Checks []Check
}

// Check is one thing a probe verified about one request.
type Check struct {
	// Target says what was asked about: "unknown serial <hex> under
	// <issuer>" or "serial <hex> (certificate|precertificate), want
	// <status>".
	Target string
	// Method is GET or POST.
	Method string
	// Name is what was checked:
	//
	//   - "http": the request completed with HTTP status 200 (clients
	//     such as openssl do not read the body of any other status);
	//   - "content-type": Content-Type is application/ocsp-response;
	//   - "body": for an unknown serial, the body is exactly the 5 bytes
	//     of [UnauthorizedDER];
	//   - "no-cache": for an unknown serial, Cache-Control forbids
	//     serving it without revalidation (no-store, no-cache or
	//     max-age=0), so no CDN keeps an "unauthorized" after the real
	//     response exists;
	//   - "response": the body is a successful OCSPResponse with one
	//     SingleResponse whose CertID names the issuer with the requested
	//     hash algorithm and the certificate's serial, signed by the
	//     issuer or a delegated responder it certified, the signature
	//     verifying, with a validity interval within BR §4.9.9
	//     ([ocspstate.Validate]); Problem says what failed;
	//   - "fresh": thisUpdate is not ahead of now (beyond Skew), nextUpdate
	//     is ahead, a delegated responder certificate is not expired;
	//   - "status": the certificate status is the one wanted;
	//   - "cache-headers": Cache-Control has a max-age, and neither it
	//     (less any Age) nor Expires lets a cache keep the response past
	//     its nextUpdate.
	//
	// Checks after a failed "http", "response" are not made.
	Name string
	// OK is true if the check passed.
	OK bool
	// Detail says what was seen.
	Detail string
	// Problem classifies a failed "response", "fresh" or "status" check.
	Problem ocspstate.Problem
}

// String formats the check as one line: PASS or FAIL, method, target,
// name, detail.
func (c Check) String() string {
	verdict := "PASS"
	if !c.OK {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %s %s: %s", verdict, c.Method, c.Target, c.Name)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// OK reports whether every check passed (and at least one was made).
func (r *Report) OK() bool { return len(r.Checks) > 0 && len(r.Failed()) == 0 }

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// String formats the report, one check per line.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "probe of %s at %s: ", r.URL, r.Started.UTC().Format(time.RFC3339))
	if r.OK() {
		fmt.Fprintf(&b, "all %d checks passed\n", len(r.Checks))
	} else {
		fmt.Fprintf(&b, "%d of %d checks failed\n", len(r.Failed()), len(r.Checks))
	}
	for _, c := range r.Checks {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Probe checks the OCSP responder at url with a zero [Prober]: a random
// serial under each issuer must get exactly [UnauthorizedDER], uncacheable;
// each certificate must get a valid, fresh, good response over both GET
// and POST, with consistent caching headers. To expect revoked, or to set
// timeouts, use [Prober.Probe].
func Probe(ctx context.Context, url string, issuers []*x509.Certificate, certs ...*x509.Certificate) (*Report, error) {
	targets := make([]ProbeTarget, len(certs))
	for i, c := range certs {
		targets[i] = ProbeTarget{Cert: c}
	}
	return (&Prober{}).Probe(ctx, url, issuers, targets...)
}

// Probe checks the OCSP responder at url (the URL in certificates' AIA
// extension), for each of issuers and each of targets, over GET (RFC 5019)
// and POST (RFC 6960). It is the check to run before an origin enters
// rotation, and from outside, continuously: the DigiCert incident of 2019
// was a responder serving a 1-byte body for unknown serials, cached by a
// CDN.
//
// For each issuer it asks about a random serial, which must get exactly
// the 5 bytes of [UnauthorizedDER] with HTTP 200 and headers no cache
// keeps. For each target it requires a response that is signed by the
// issuer or its delegated responder, verifies, is fresh, is about the
// target's serial, says the target's WantStatus, and carries caching
// headers that do not outlive its nextUpdate. See [Check] for the list.
//
// Failures of the responder are checks in the report, never errors. Probe
// returns an error only for bad arguments (no issuers, a target signed by
// none of them, a URL that is not http or https), or when ctx ends, along
// with the report so far.
func (p *Prober) Probe(ctx context.Context, url string, issuers []*x509.Certificate, targets ...ProbeTarget) (*Report, error) {
	if err := checkProbeURL(url); err != nil {
		return nil, err
	}
	if len(issuers) == 0 {
		return nil, errors.New("responder: Probe needs at least one issuer")
	}
	for i, iss := range issuers {
		if iss == nil {
			return nil, fmt.Errorf("responder: Probe issuer %d is nil", i)
		}
	}
	hash := p.CertIDHash
	switch hash {
	case 0:
		hash = crypto.SHA1
	case crypto.SHA1, crypto.SHA256:
	default:
		return nil, fmt.Errorf("responder: Prober.CertIDHash %v is not SHA-1 or SHA-256", hash)
	}
	type job struct {
		target  ProbeTarget
		issuer  *x509.Certificate
		unknown bool
		label   string
	}
	var jobs []job
	for _, iss := range issuers {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if err != nil {
			return nil, fmt.Errorf("responder: drawing a random serial: %w", err)
		}
		serial.SetBit(serial, 126, 1) // positive, 16 octets
		jobs = append(jobs, job{
			target: ProbeTarget{Cert: &x509.Certificate{SerialNumber: serial}}, issuer: iss, unknown: true,
			label: fmt.Sprintf("unknown serial %s under %q", ocspstate.SerialHex(serial), iss.Subject.CommonName),
		})
	}
	for i, t := range targets {
		if t.Cert == nil || t.Cert.SerialNumber == nil {
			return nil, fmt.Errorf("responder: Probe target %d has no certificate", i)
		}
		if t.WantStatus == 0 {
			t.WantStatus = ocspstate.Good
		}
		if t.WantStatus != ocspstate.Good && t.WantStatus != ocspstate.Revoked {
			return nil, fmt.Errorf("responder: Probe target %d: WantStatus must be good or revoked", i)
		}
		iss := issuerOf(t.Cert, issuers)
		if iss == nil {
			return nil, fmt.Errorf("responder: Probe target %d (serial %s) is signed by none of the issuers", i, ocspstate.SerialHex(t.Cert.SerialNumber))
		}
		kind := "certificate"
		if isPrecert(t.Cert) {
			kind = "precertificate"
		}
		jobs = append(jobs, job{target: t, issuer: iss,
			label: fmt.Sprintf("serial %s (%s), want %s", ocspstate.SerialHex(t.Cert.SerialNumber), kind, t.WantStatus)})
	}

	pr := p.withDefaults(hash)
	rep := &Report{URL: url, Started: pr.now()}
	for _, j := range jobs {
		reqDER, err := ocsp.CreateRequest(j.target.Cert, j.issuer, &ocsp.RequestOptions{Hash: hash})
		if err != nil {
			return nil, fmt.Errorf("responder: building a request for %s: %w", j.label, err)
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			res := pr.fetch(ctx, url, method, reqDER)
			add := func(name string, ok bool, p ocspstate.Problem, format string, args ...any) {
				rep.Checks = append(rep.Checks, Check{Target: j.label, Method: method, Name: name, OK: ok, Detail: fmt.Sprintf(format, args...), Problem: p})
			}
			if j.unknown {
				pr.checkUnknown(res, add)
			} else {
				pr.checkTarget(res, j.issuer, j.target, add)
			}
		}
	}
	return rep, ctx.Err()
}

type prober struct {
	client  *http.Client
	timeout time.Duration
	hash    crypto.Hash
	skew    time.Duration
	now     func() time.Time
}

func (p *Prober) withDefaults(hash crypto.Hash) *prober {
	pr := &prober{client: p.Client, timeout: p.Timeout, hash: hash, skew: skewOrDefault(p.Skew), now: p.Now}
	if pr.timeout <= 0 {
		pr.timeout = 10 * time.Second
	}
	if pr.client == nil {
		pr.client = &http.Client{
			Timeout:       pr.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if pr.now == nil {
		pr.now = time.Now
	}
	return pr
}

func checkProbeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("responder: Probe URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("responder: Probe URL %q is not an http or https URL", raw)
	}
	return nil
}

// maxProbeBody caps how much of a response body the probe reads.
const maxProbeBody = 1 << 20

type fetched struct {
	err    error
	status int
	header http.Header
	body   []byte
	at     time.Time // when the response arrived
}

// fetch sends one request: GET with the URL-encoded base64 of the request
// appended to url (as one path segment, '/', '+' and '=' percent-encoded,
// RFC 5019 §5), or POST with the DER body.
func (p *prober) fetch(ctx context.Context, base, method string, reqDER []byte) fetched {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		req, err = http.NewRequestWithContext(ctx, method, base+url.QueryEscape(base64.StdEncoding.EncodeToString(reqDER)), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, base, bytes.NewReader(reqDER))
		if req != nil {
			req.Header.Set("Content-Type", "application/ocsp-request")
		}
	}
	if err != nil {
		return fetched{err: err}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fetched{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody+1))
	if err != nil {
		return fetched{err: fmt.Errorf("reading body: %w", err)}
	}
	if len(body) > maxProbeBody {
		return fetched{err: fmt.Errorf("body exceeds %d bytes", maxProbeBody)}
	}
	return fetched{status: resp.StatusCode, header: resp.Header, body: body, at: p.now()}
}

type addFunc func(name string, ok bool, p ocspstate.Problem, format string, args ...any)

// checkHTTP records the "http" and "content-type" checks and reports
// whether the others can go on.
func (p *prober) checkHTTP(res fetched, add addFunc) bool {
	if res.err != nil {
		add("http", false, 0, "%v", res.err)
		return false
	}
	if res.status != http.StatusOK {
		add("http", false, 0, "HTTP %d, want 200; body %s", res.status, describeBody(res.body))
		return false
	}
	add("http", true, 0, "HTTP 200, %d bytes", len(res.body))
	ct := res.header.Get("Content-Type")
	add("content-type", ct == "application/ocsp-response", 0, "%q", ct)
	return true
}

func (p *prober) checkUnknown(res fetched, add addFunc) {
	if !p.checkHTTP(res, add) {
		return
	}
	if string(res.body) == UnauthorizedDER {
		add("body", true, 0, "the 5-byte unauthorized response")
	} else {
		add("body", false, 0, "want the 5 bytes 30 03 0a 01 06 (unauthorized), got %s", describeBody(res.body))
	}
	cc := res.header.Get("Cache-Control")
	if uncacheable(cc) {
		add("no-cache", true, 0, "Cache-Control %q", cc)
	} else {
		add("no-cache", false, 0, "Cache-Control %q lets caches keep an unauthorized response; want no-cache, no-store or max-age=0", cc)
	}
}

func (p *prober) checkTarget(res fetched, issuer *x509.Certificate, t ProbeTarget, add addFunc) {
	if !p.checkHTTP(res, add) {
		return
	}
	info, err := ocspstate.Validate(res.body, issuer, ocspstate.Expect{Serial: t.Cert.SerialNumber})
	if err != nil {
		prob := ocspstate.ProblemOf(err)
		if prob == 0 {
			prob = ocspstate.ProblemMalformed
		}
		add("response", false, prob, "%v; body %s", err, describeBody(res.body))
		return
	}
	if info.CertIDHash != p.hash {
		add("response", false, ocspstate.ProblemCertID, "CertID hash is %s, the request's %s: clients find no status in it", info.CertIDHash, p.hash)
		return
	}
	signer := "the issuer"
	if info.Delegated {
		signer = "a delegated responder"
	}
	add("response", true, 0, "signed by %s, %d bytes", signer, len(res.body))

	now := res.at
	if problem, detail := info.Fresh(now, p.skew); problem != 0 {
		add("fresh", false, problem, "%s", detail)
	} else {
		add("fresh", true, 0, "thisUpdate %s, nextUpdate %s", fmtTime(info.ThisUpdate), fmtTime(info.NextUpdate))
	}
	if info.Status == t.WantStatus {
		add("status", true, 0, "%s", info.Status)
	} else {
		add("status", false, ocspstate.ProblemStatus, "response says %s, want %s", info.Status, t.WantStatus)
	}
	p.checkCacheHeaders(res, info, add)
}

// checkCacheHeaders requires a max-age and that nothing lets a cache keep
// the response past nextUpdate (with the prober's skew as tolerance).
func (p *prober) checkCacheHeaders(res fetched, info *ocspstate.ResponseInfo, add addFunc) {
	cc := res.header.Get("Cache-Control")
	d := parseCacheControl(cc)
	limit := info.NextUpdate.Add(p.skew)
	var problems []string
	if d.noStore || d.noCache {
		// Not cached at all: consistent, if wasteful.
	} else if d.maxAge < 0 {
		problems = append(problems, fmt.Sprintf("Cache-Control %q has no max-age, so caches pick their own lifetime", cc))
	} else {
		age, _ := strconv.ParseInt(res.header.Get("Age"), 10, 64)
		lifetime := d.maxAge
		if d.sMaxAge >= 0 {
			lifetime = max(lifetime, d.sMaxAge)
		}
		if end := res.at.Add(time.Duration(lifetime-age) * time.Second); lifetime > age && end.After(limit) {
			problems = append(problems, fmt.Sprintf("Cache-Control %q (Age %d) lets caches keep it until %s, past nextUpdate %s", cc, age, fmtTime(end), fmtTime(info.NextUpdate)))
		}
	}
	if e := res.header.Get("Expires"); e != "" {
		if t, err := http.ParseTime(e); err == nil && t.After(limit) {
			problems = append(problems, fmt.Sprintf("Expires %s is past nextUpdate %s", fmtTime(t), fmtTime(info.NextUpdate)))
		}
	}
	if len(problems) > 0 {
		add("cache-headers", false, 0, "%s", strings.Join(problems, "; "))
		return
	}
	add("cache-headers", true, 0, "Cache-Control %q, Expires %q", cc, res.header.Get("Expires"))
}

type cacheDirectives struct {
	noStore, noCache bool
	maxAge, sMaxAge  int64 // -1 when absent
}

func parseCacheControl(cc string) cacheDirectives {
	d := cacheDirectives{maxAge: -1, sMaxAge: -1}
	for _, part := range strings.Split(cc, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		value = strings.Trim(value, `"`)
		switch strings.ToLower(name) {
		case "no-store":
			d.noStore = true
		case "no-cache":
			d.noCache = true
		case "max-age":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
				d.maxAge = n
			}
		case "s-maxage":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
				d.sMaxAge = n
			}
		}
	}
	return d
}

// uncacheable reports whether Cache-Control keeps every cache from serving
// the response without revalidation.
func uncacheable(cc string) bool {
	d := parseCacheControl(cc)
	return d.noStore || d.noCache || (d.maxAge == 0 && d.sMaxAge <= 0)
}

// describeBody summarises a body for a report: its size, the first bytes
// in hex, and a hint for the failures seen in practice.
func describeBody(b []byte) string {
	const show = 16
	hint := ""
	switch {
	case len(b) == 0:
		return "empty"
	case len(b) < 5:
		hint = " (too short to be any OCSPResponse)"
	case b[0] == '<' || bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")):
		hint = " (looks like HTML)"
	case b[0] != 0x30:
		hint = " (not DER)"
	}
	n := min(len(b), show)
	more := ""
	if len(b) > show {
		more = " …"
	}
	return fmt.Sprintf("of %d bytes % x%s%s", len(b), b[:n], more, hint)
}

func issuerOf(cert *x509.Certificate, issuers []*x509.Certificate) *x509.Certificate {
	for _, iss := range issuers {
		if bytes.Equal(cert.RawIssuer, iss.RawSubject) && cert.CheckSignatureFrom(iss) == nil {
			return iss
		}
	}
	return nil
}

// oidCTPoison is the RFC 6962 §3.1 precertificate poison extension.
var oidCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

func isPrecert(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidCTPoison) {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
