package responder

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxRequestBytes caps the size of a DER OCSP request: a POST body, or the
// decoded request in a GET path. A request about one certificate is about a
// hundred bytes, two hundred with a nonce; anything past 10 KB is not an
// OCSP client.
const MaxRequestBytes = 10 << 10

// maxPathBytes caps the escaped GET path: base64 of MaxRequestBytes with
// every character percent-encoded, plus room for a mount prefix.
const maxPathBytes = 3*(MaxRequestBytes*4/3+4) + 1024

// maxGETCandidates bounds how many suffixes of a GET path decodeGET tries,
// so that a path of many "/M" costs linear, not quadratic, work.
const maxGETCandidates = 8

// request is the one CertID an OCSP request asks about, filled in place by
// parseRequest or decodeGET.
type request struct {
	hash   crypto.Hash // crypto.SHA1 or crypto.SHA256; 0 for any other algorithm
	issuer hashesKey   // the issuer name and key hashes; zero unless hash is supported and the hashes have its size
	serial big.Int
}

// The CertID hash algorithms served, and the contents of their DER OBJECT
// IDENTIFIERs (compared as bytes, to keep the hot path free of
// allocations).
var (
	oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA1DER   = oidContents(oidSHA1)
	oidSHA256DER = oidContents(oidSHA256)
)

func oidContents(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err) // constant input
	}
	return der[2:]
}

// errMalformed is wrapped by every error that means "answer
// malformedRequest".
var errMalformed = errors.New("malformed OCSP request")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parseRequest reads a DER OCSPRequest (RFC 6960 §4.1.1):
//
//	OCSPRequest ::= SEQUENCE {
//	    tbsRequest                  TBSRequest,
//	    optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
//	TBSRequest ::= SEQUENCE {
//	    version             [0]     EXPLICIT Version DEFAULT v1,
//	    requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
//	    requestList                 SEQUENCE OF Request,
//	    requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
//	Request ::= SEQUENCE {
//	    reqCert                     CertID,
//	    singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//	CertID ::= SEQUENCE {
//	    hashAlgorithm       AlgorithmIdentifier,
//	    issuerNameHash      OCTET STRING,
//	    issuerKeyHash       OCTET STRING,
//	    serialNumber        CertificateSerialNumber }
//
// It requires exactly one Request (RFC 5019 §2.1.1 and RFC 9919 §2.1.1
// require clients to send one; pre-signed responses cover one serial). The
// signature, the requestor name and all extensions (the nonce among them)
// are read past and ignored: the responses are signed in advance and are
// public. Serials are read as DER INTEGERs of any sign; the caller decides
// what a non-positive serial means.
func parseRequest(der []byte, req *request) error {
	if len(der) == 0 {
		return malformed("empty request")
	}
	if len(der) > MaxRequestBytes {
		return malformed("request of %d bytes exceeds %d", len(der), MaxRequestBytes)
	}
	in := cryptobyte.String(der)
	var ocspReq, tbs, list cryptobyte.String
	if !in.ReadASN1(&ocspReq, cbasn1.SEQUENCE) || !in.Empty() {
		return malformed("not one DER SEQUENCE")
	}
	if !ocspReq.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return malformed("no tbsRequest")
	}
	if !ocspReq.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) || !ocspReq.Empty() {
		return malformed("trailing data after tbsRequest")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return malformed("bad version or requestorName")
	}
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return malformed("no requestList")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific().Constructed()) || !tbs.Empty() {
		return malformed("bad requestExtensions or trailing data")
	}
	var one cryptobyte.String
	if !list.ReadASN1(&one, cbasn1.SEQUENCE) {
		return malformed("requestList is empty or bad")
	}
	if !list.Empty() {
		return malformed("more than one Request in requestList (RFC 5019 §2.1.1 allows one)")
	}
	var certID, alg, oid, nameHash, keyHash cryptobyte.String
	if !one.ReadASN1(&certID, cbasn1.SEQUENCE) ||
		!one.SkipOptionalASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) || !one.Empty() {
		return malformed("bad Request")
	}
	if !certID.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || len(oid) == 0 {
		return malformed("bad CertID hashAlgorithm")
	}
	// Parameters are absent or NULL; anything else is not a hash we know.
	knownParams := true
	if !alg.Empty() {
		var params cryptobyte.String
		var tag cbasn1.Tag
		if !alg.ReadAnyASN1Element(&params, &tag) || !alg.Empty() {
			return malformed("bad CertID hashAlgorithm parameters")
		}
		knownParams = tag == cbasn1.NULL && len(params) == 2
	}
	if !certID.ReadASN1(&nameHash, cbasn1.OCTET_STRING) || !certID.ReadASN1(&keyHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1Integer(&req.serial) || !certID.Empty() {
		return malformed("bad CertID")
	}
	req.hash = 0
	switch {
	case !knownParams:
	case bytes.Equal(oid, oidSHA1DER):
		req.hash = crypto.SHA1
	case bytes.Equal(oid, oidSHA256DER):
		req.hash = crypto.SHA256
	}
	req.issuer = makeHashesKey(req.hash, nameHash, keyHash)
	return nil
}

// escapedPath is u.EscapedPath() for decodeGET, without its cost on the
// hot path (a validation and an allocating unescape on every request,
// 15% of the handler's time): RawPath when it is an encoding of Path;
// else Path itself, unless Path holds a '%', when it defers to
// EscapedPath. Where EscapedPath would escape other characters of Path,
// decodeGET reaches the same outcome from Path: a space decodes as '+'
// either way, line breaks and '=' are dropped either way, and any other
// character is refused either way. TestEscapedPathEquivalence and FuzzGET
// check that both decode alike.
func escapedPath(u *url.URL) string {
	if u.RawPath != "" && unescapesTo(u.RawPath, u.Path) {
		return u.RawPath
	}
	if strings.IndexByte(u.Path, '%') >= 0 {
		return u.EscapedPath()
	}
	return u.Path
}

// unescapesTo reports whether percent-decoding raw gives path, without
// allocating.
func unescapesTo(raw, path string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			var ok bool
			if c, ok = unescape(raw, i); !ok {
				return false
			}
			i += 2
		}
		if j >= len(path) || path[j] != c {
			return false
		}
		j++
	}
	return j == len(path)
}

// unescape decodes the percent-encoding that starts at s[i], a '%'; ok is
// false unless two hex digits follow it.
func unescape(s string, i int) (c byte, ok bool) {
	if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
		return 0, false
	}
	return unhex(s[i+1])<<4 | unhex(s[i+2]), true
}

// decodeGET extracts the DER request from an RFC 5019 / RFC 9919 GET path,
// given in its escaped form (see escapedPath): the URL-encoded base64 of the DER request
// after the last path segment of the mount prefix.
//
// Real clients disagree on the encoding. NSS sends raw base64, so the
// request itself may contain '/' and '+'; some clients and proxies turn
// '+' into a space (sent as %20), others percent-encode '+', '/' and '='.
// Since base64 may contain '/', "the last path segment" is not
// well-defined: decodeGET tries each suffix of the path that starts after
// a '/' and begins with 'M' (base64 of a DER SEQUENCE tag, 0x30), longest
// first, up to maxGETCandidates of them, and returns the first that
// decodes to a parseable request. A mount prefix such as "/ocsp/"
// therefore needs no configuration.
func decodeGET(escapedPath string, req *request) error {
	if len(escapedPath) > maxPathBytes {
		return malformed("GET path of %d bytes is too long", len(escapedPath))
	}
	var firstErr error
	tries := 0
	for i := 0; i < len(escapedPath) && tries < maxGETCandidates; i++ {
		if escapedPath[i] != '/' || i+1 >= len(escapedPath) || escapedPath[i+1] != 'M' {
			continue
		}
		tries++
		d, err := decodeBase64Segment(escapedPath[i+1:])
		if err == nil {
			if err = parseRequest(d, req); err == nil {
				return nil
			}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = malformed("no base64 OCSP request in GET path %q", truncate(escapedPath, 64))
	}
	return firstErr
}

// decodeBase64Segment undoes the URL encoding and then the base64 of s,
// in one pass, tolerating every client quirk seen in practice:
// percent-encoding of any character, spaces (or '+' decoded to a space by
// a proxy) where '+' was, missing '=' padding, line breaks, and the
// URL-safe alphabet. It decodes as base64.RawStdEncoding would after
// those repairs (the bits past the last whole byte are ignored);
// FuzzBase64Segment holds it to that.
func decodeBase64Segment(s string) ([]byte, error) {
	der := make([]byte, 0, len(s)*3/4+2)
	var acc uint32 // 6 bits per sextet read, up to four
	n := 0         // sextets read, all told
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			var ok bool
			if c, ok = unescape(s, i); !ok {
				return nil, malformed("bad URL encoding at offset %d", i)
			}
			i += 2
		}
		v := sextets[c]
		switch v {
		case sextetSkip:
			continue
		case sextetBad:
			return nil, malformed("bad base64: illegal character %q at sextet %d", c, n)
		}
		acc = acc<<6 | uint32(v)
		n++
		if n%4 == 0 {
			der = append(der, byte(acc>>16), byte(acc>>8), byte(acc))
			acc = 0
		}
	}
	switch n % 4 {
	case 1:
		return nil, malformed("bad base64: a lone sextet at the end")
	case 2:
		der = append(der, byte(acc>>4))
	case 3:
		der = append(der, byte(acc>>10), byte(acc>>2))
	}
	return der, nil
}

// sextets maps a character of the (repaired) base64 text to its value,
// or to sextetSkip or sextetBad.
var sextets = func() (t [256]byte) {
	for i := range t {
		t[i] = sextetBad
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(std) {
		t[std[i]] = byte(i)
	}
	t[' '], t['-'], t['_'] = t['+'], t['+'], t['/']
	// Line breaks are noise; padding is optional.
	t['\r'], t['\n'], t['='] = sextetSkip, sextetSkip, sextetSkip
	return t
}()

const (
	sextetSkip = 0xfe
	sextetBad  = 0xff
)

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// readPOST reads an RFC 6960 Appendix A.1 POST body. It returns the HTTP
// status to answer with along with an error.
func readPOST(r *http.Request) ([]byte, int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/ocsp-request" {
			return nil, http.StatusUnsupportedMediaType, malformed("Content-Type %q is not application/ocsp-request", truncate(ct, 64))
		}
	}
	if r.ContentLength > MaxRequestBytes {
		return nil, http.StatusRequestEntityTooLarge, malformed("Content-Length %d exceeds %d", r.ContentLength, MaxRequestBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		return nil, http.StatusBadRequest, malformed("reading body: %v", err)
	}
	if len(body) > MaxRequestBytes {
		return nil, http.StatusRequestEntityTooLarge, malformed("body exceeds %d bytes", MaxRequestBytes)
	}
	return body, http.StatusOK, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
