package ocspstate

import (
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func fullRecord() *Record {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	return &Record{
		Issuer:     IssuerID{1, 2, 3},
		Serial:     new(big.Int).SetBytes([]byte{0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}),
		State:      Issued,
		IntentDER:  []byte("intent"),
		PrecertDER: []byte("precert"),
		SCTs:       [][]byte{[]byte("a"), []byte("bb")},
		FinalDER:   []byte("final"),
		NotBefore:  t0,
		NotAfter:   t0.Add(90 * 24 * time.Hour),
		OCSP: OCSP{Enabled: true, Status: Revoked, RevokedAt: t0.Add(time.Hour), Reason: 4,
			ResponseDER: []byte("resp"), ThisUpdate: t0, NextUpdate: t0.Add(96 * time.Hour)},
		Lease:   Lease{Owner: "w1", Expires: t0.Add(time.Minute)},
		Created: t0, Updated: t0.Add(time.Second), Version: 42, Due: t0.Add(72 * time.Hour),
	}
}

// stored encodes r as the bbolt store does and returns a blob lookup.
func stored(r *Record) ([]byte, func(byte) []byte) {
	blobs := map[byte][]byte{}
	for _, tag := range blobTags {
		blobs[tag] = blob(r, tag)
	}
	return encodeHot(r), func(tag byte) []byte { return blobs[tag] }
}

func TestEncodingRoundTrip(t *testing.T) {
	for name, r := range map[string]*Record{
		"full": fullRecord(),
		"minimal": {Issuer: IssuerID{9}, Serial: big.NewInt(1), State: Reserved, IntentDER: []byte{1},
			NotBefore: time.Unix(0, 0).UTC(), NotAfter: time.Unix(1, 0).UTC()},
		"far future": func() *Record {
			r := fullRecord()
			r.NotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			hot, blobs := stored(r)
			v, err := storedVersion(hot)
			require.NoError(t, err)
			require.Equal(t, r.Version, v)
			resp, err := storedResponse(hot)
			require.NoError(t, err)
			require.Equal(t, r.OCSP.ResponseDER, resp)
			got, err := decodeRecord(r.Key(), hot, blobs)
			require.NoError(t, err)
			require.True(t, r.Equal(got), "round trip:\n%+v\n%+v", r, got)
			require.Equal(t, hot, encodeHot(got))
		})
	}
}

func TestDecodeRefusesTruncation(t *testing.T) {
	r := fullRecord()
	hot, blobs := stored(r)
	for i := 0; i < len(hot); i++ {
		_, err := decodeRecord(r.Key(), hot[:i], blobs)
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d bytes", i)
	}
	_, err := decodeRecord(r.Key(), append(hot, 0), blobs)
	require.ErrorIs(t, err, ErrCorrupt, "trailing byte")
	scts := blob(r, blobSCTs)
	_, err = decodeRecord(r.Key(), hot, func(tag byte) []byte {
		if tag == blobSCTs {
			return scts[:len(scts)-1]
		}
		return blobs(tag)
	})
	require.ErrorIs(t, err, ErrCorrupt, "truncated SCT list")
}

func FuzzDecodeRecord(f *testing.F) {
	r := fullRecord()
	hot, _ := stored(r)
	f.Add(hot, blob(r, blobSCTs))
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0, 1, 1}, []byte{})
	f.Fuzz(func(t *testing.T, hot, scts []byte) {
		key := NewKey(IssuerID{1}, big.NewInt(5))
		got, err := decodeRecord(key, hot, func(tag byte) []byte {
			if tag == blobSCTs {
				return scts
			}
			return nil
		})
		if err != nil {
			return
		}
		hot2, blobs2 := stored(got)
		again, err := decodeRecord(key, hot2, blobs2)
		if err != nil || !again.Equal(got) {
			t.Fatalf("decoded record does not round-trip: %v", err)
		}
	})
}

func TestRefreshDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	next := func(validity time.Duration) time.Time { return t0.Add(validity - time.Second) }
	for _, tc := range []struct {
		name     string
		validity time.Duration // inclusive, as BR §4.9.9 counts it
		want     time.Time
	}{
		{"8h: half the interval", 8 * time.Hour, t0.Add(4 * time.Hour)},
		{"15h59m59s: half", 16*time.Hour - time.Second, t0.Add((16*time.Hour - time.Second) / 2)},
		{"16h: 8h before nextUpdate", 16 * time.Hour, next(16 * time.Hour).Add(-8 * time.Hour)},
		{"96h: 8h before nextUpdate", 96 * time.Hour, next(96 * time.Hour).Add(-8 * time.Hour)},
		{"104h: exactly both", 104 * time.Hour, next(104 * time.Hour).Add(-8 * time.Hour)},
		{"7 days: 4 days after thisUpdate", 7 * 24 * time.Hour, t0.Add(4 * 24 * time.Hour)},
		{"10 days: 4 days after thisUpdate", 10 * 24 * time.Hour, t0.Add(4 * 24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RefreshDeadline(t0, next(tc.validity))
			require.True(t, got.Equal(tc.want), "got %v want %v", got, tc.want)
		})
	}
}

func TestDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	resp := func(r *Record, this time.Time) {
		r.OCSP.ResponseDER = []byte("r")
		r.OCSP.ThisUpdate = this
		r.OCSP.NextUpdate = this.Add(96*time.Hour - time.Second)
	}
	refresh := DuePolicy{}.RefreshDue(t0, t0.Add(96*time.Hour-time.Second))
	require.True(t, refresh.After(t0.Add(60*time.Hour)) && refresh.Before(t0.Add(88*time.Hour)), "default lead: %v", refresh.Sub(t0))

	base := func(st State) *Record {
		r := &Record{State: st, Updated: t0, NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour)}
		if st.Published() {
			r.OCSP.Enabled = true
			r.OCSP.Status = Good
			resp(r, t0)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		rec    func() *Record
		policy DuePolicy
		want   time.Time
	}{
		{"reserved: lease expiry", func() *Record { r := base(Reserved); r.Lease.Expires = t0.Add(time.Minute); return r }, DuePolicy{}, t0.Add(time.Minute)},
		{"reserved without lease: now", func() *Record { return base(Reserved) }, DuePolicy{}, t0},
		{"abandoned: never", func() *Record { return base(Abandoned) }, DuePolicy{}, time.Time{}},
		{"issued: refresh", func() *Record { return base(Issued) }, DuePolicy{}, refresh},
		{"ctfailed: refresh", func() *Record { return base(CTFailed) }, DuePolicy{}, refresh},
		{"precert: lease first", func() *Record { r := base(Precert); r.Lease.Expires = t0.Add(time.Minute); return r }, DuePolicy{}, t0.Add(time.Minute)},
		{"precert: refresh first", func() *Record { r := base(Precert); r.Lease.Expires = t0.Add(200 * time.Hour); return r }, DuePolicy{}, refresh},
		{"enabled without response: now", func() *Record { r := base(Issued); r.OCSP.ResponseDER = nil; return r }, DuePolicy{}, t0},
		{"explicit lead", func() *Record { return base(Issued) }, DuePolicy{RefreshLead: time.Hour}, RefreshDeadline(t0, t0.Add(96*time.Hour-time.Second)).Add(-time.Hour)},
		{"expired: never", func() *Record { r := base(Issued); r.NotAfter = t0.Add(24 * time.Hour); return r }, DuePolicy{}, time.Time{}},
		{"expired within margin: refresh", func() *Record { r := base(Issued); r.NotAfter = t0.Add(24 * time.Hour); return r }, DuePolicy{ExpiryMargin: 7 * 24 * time.Hour}, refresh},
		{"service already ended at write time: never", func() *Record {
			r := base(Issued)
			r.NotAfter = t0.Add(-time.Hour)
			r.OCSP.ResponseDER = nil // even with no response at all
			return r
		}, DuePolicy{}, time.Time{}},
		{"in flight past expiry: lease still due", func() *Record {
			r := base(Precert)
			r.NotAfter = t0.Add(-time.Hour)
			r.Lease.Expires = t0.Add(time.Minute)
			return r
		}, DuePolicy{}, t0.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.policy.Due(tc.rec(), t0)
			require.True(t, got.Equal(tc.want), "got %v want %v", got, tc.want)
		})
	}
}

func TestKeySplit(t *testing.T) {
	id := IssuerID{0xaa, 0xbb}
	for _, s := range []int64{1, 255, 256, 1 << 40} {
		k := NewKey(id, big.NewInt(s))
		gotID, gotSerial, err := k.Split()
		require.NoError(t, err)
		require.Equal(t, id, gotID)
		require.Equal(t, s, gotSerial.Int64())
	}
	_, _, err := Key("short").Split()
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestCheckSerial(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))
	require.NoError(t, CheckSerial(max), "20 octets")
	require.Error(t, CheckSerial(new(big.Int).Lsh(big.NewInt(1), 159)), "top bit set needs a 21st octet")
	require.Error(t, CheckSerial(big.NewInt(0)))
	require.Error(t, CheckSerial(nil))
}

func TestStateStrings(t *testing.T) {
	for _, s := range States {
		got, err := ParseState(s.String())
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	_, err := ParseState("Bogus")
	require.Error(t, err)
	require.Equal(t, "State(9)", State(9).String())
}
