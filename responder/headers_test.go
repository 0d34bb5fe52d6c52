package responder

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The direct-mapped caches of header values give the value for the key
// asked, also when keys that share a slot alternate.
func TestHeaderCacheCollisions(t *testing.T) {
	c := newHeaderCache(time.Hour)
	for range 3 {
		for _, n := range []int{0, 5, 5 + lengthSlots, 5 + 7*lengthSlots, 1 << 20} {
			require.Equal(t, strconv.Itoa(n), c.length(n))
		}
		for _, sec := range []uint32{0, 1_800_000_000, 1_800_000_000 + dateSlots} {
			require.Equal(t, time.Unix(int64(sec), 0).UTC().Format(http.TimeFormat), c.date(sec))
		}
	}
}
