package responder

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// ccTail follows max-age in the Cache-Control of a successful response.
const ccTail = ", public, no-transform, must-revalidate"

// headerCache makes the caching headers of successful responses without
// formatting what repeats from one request to the next: the Cache-Control
// value when max-age is the cap (for every response further than MaxAge
// from its nextUpdate, nearly all of them), and the HTTP dates of the
// seconds responses were signed at (a sweep signs thousands in the same
// second). It is safe for concurrent use.
type headerCache struct {
	maxAge time.Duration
	capped string // the Cache-Control value for max-age = maxAge
	dates  [dateSlots]atomic.Pointer[httpDate]
}

// dateSlots is the size of the direct-mapped cache of HTTP dates, by Unix
// second.
const dateSlots = 4096

type httpDate struct {
	sec  uint32
	text string
}

func newHeaderCache(maxAge time.Duration) *headerCache {
	return &headerCache{maxAge: maxAge, capped: cacheControl(maxAge)}
}

// cacheControl is the Cache-Control value for a response cacheable for d,
// floored to the second.
func cacheControl(d time.Duration) string {
	return "max-age=" + strconv.FormatInt(int64(max(d/time.Second, 0)), 10) + ccTail
}

// date returns sec as an HTTP date (RFC 9110 §5.6.7).
func (c *headerCache) date(sec uint32) string {
	slot := &c.dates[sec%dateSlots]
	if d := slot.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &httpDate{sec: sec, text: time.Unix(int64(sec), 0).UTC().Format(http.TimeFormat)}
	slot.Store(d)
	return d.text
}

// etag returns the ETag of a body whose SHA-256 is sum: its quoted hex.
func etag(sum *[32]byte) string {
	var buf [2 + 2*len(sum)]byte
	buf[0], buf[len(buf)-1] = '"', '"'
	hex.Encode(buf[1:len(buf)-1], sum[:])
	return string(buf[:])
}

// set sets the caching headers of a successful response (also sent with
// 304), and, unless bodyLen is negative, its Content-Type and
// Content-Length:
//
//   - Cache-Control: max-age=N, public, no-transform, must-revalidate,
//     N being the time left until nextUpdate, floored to the second,
//     capped by maxAge;
//   - Last-Modified: thisUpdate; Expires: nextUpdate;
//   - ETag: etag, which the caller made with [etag];
//   - Content-Type: application/ocsp-response; Content-Length: bodyLen.
func (c *headerCache) set(hdr http.Header, etag string, v *verdict, now time.Time, bodyLen int) {
	cc := c.capped
	if left := time.Unix(int64(v.nextUpdate), 0).Sub(now); left < c.maxAge {
		cc = cacheControl(left)
	}
	// One allocation for every value. Canonical keys; each slice's
	// capacity is 1, so that an Add by a wrapper reallocates rather than
	// overwrites its neighbour.
	vals := make([]string, 6)
	vals[0], vals[1], vals[2], vals[3] = cc, c.date(v.thisUpdate), c.date(v.nextUpdate), etag
	hdr["Cache-Control"] = vals[0:1:1]
	hdr["Last-Modified"] = vals[1:2:2]
	hdr["Expires"] = vals[2:3:3]
	hdr["Etag"] = vals[3:4:4]
	if bodyLen < 0 {
		return
	}
	vals[4], vals[5] = "application/ocsp-response", strconv.Itoa(bodyLen)
	hdr["Content-Type"] = vals[4:5:5]
	hdr["Content-Length"] = vals[5:6:6]
}
