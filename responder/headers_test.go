package responder

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The direct-mapped cache of HTTP dates gives the date asked, also when
// seconds that share a slot alternate.
func TestDateCacheCollisions(t *testing.T) {
	c := newHeaderCache(time.Hour)
	for range 3 {
		for _, sec := range []uint32{0, 1_800_000_000, 1_800_000_000 + dateSlots} {
			require.Equal(t, time.Unix(int64(sec), 0).UTC().Format(http.TimeFormat), c.date(sec))
		}
	}
}
