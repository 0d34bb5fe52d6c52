package ocspstate

import "time"

// DuePolicy turns a record into the time something must next happen to it.
// The zero value is usable: responses are refreshed until they cover the
// certificate's NotAfter, each becoming due three quarters of the way to
// its BR deadline.
type DuePolicy struct {
	// ExpiryMargin extends OCSP service past NotAfter: responses keep
	// being refreshed while the refresh would happen before NotAfter plus
	// ExpiryMargin. Zero stops once a response covers NotAfter.
	ExpiryMargin time.Duration
	// RefreshLead is how long before its BR deadline (see
	// [RefreshDeadline]) a response becomes due for re-signing, leaving
	// the sweeper that much time to retry through an outage. Zero means a
	// quarter of the time from thisUpdate to the deadline (about 22 hours
	// for 96-hour responses). It is capped at half that time.
	RefreshLead time.Duration
}

// RefreshDeadline is the latest moment BR §4.9.9 allows a response with
// this interval to be replaced. The interval counts inclusively (one second
// more than nextUpdate − thisUpdate). With an interval of 16 hours or more,
// the response must be re-signed at least 8 hours before nextUpdate and at
// most 4 days after thisUpdate; below 16 hours, before half the interval
// has passed.
func RefreshDeadline(thisUpdate, nextUpdate time.Time) time.Time {
	interval := nextUpdate.Sub(thisUpdate) + time.Second
	if interval < 16*time.Hour {
		return thisUpdate.Add(interval / 2)
	}
	d := nextUpdate.Add(-8 * time.Hour)
	if max := thisUpdate.Add(4 * 24 * time.Hour); max.Before(d) {
		d = max
	}
	return d
}

// RefreshDue is when a response with this interval becomes due under p.
func (p DuePolicy) RefreshDue(thisUpdate, nextUpdate time.Time) time.Time {
	deadline := RefreshDeadline(thisUpdate, nextUpdate)
	span := deadline.Sub(thisUpdate)
	lead := p.RefreshLead
	if lead <= 0 {
		lead = span / 4
	}
	if lead > span/2 {
		lead = span / 2
	}
	return deadline.Add(-lead)
}

// Due returns when something must next happen to r, written at now, or
// the zero time for never:
//
//   - in flight (Reserved, Precert, SCTs): when its lease expires, so that
//     recovery resumes or abandons it (at once if it has no lease);
//   - OCSP enabled: when its response is due for re-signing (at once if it
//     has none), unless that moment falls after NotAfter plus ExpiryMargin,
//     or that end has already passed at now: then it is no longer
//     refreshed;
//   - both: whichever comes first;
//   - Abandoned: never.
//
// Stores call it on every write with the write's time, so a record whose
// end of service passed while it sat in the due index leaves the index the
// next time anything touches it (see [Store.Update]).
func (p DuePolicy) Due(r *Record, now time.Time) time.Time {
	var due time.Time
	earliest := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	immediately := r.Updated
	if immediately.IsZero() {
		immediately = r.Created
	}
	if r.State.InFlight() {
		if r.Lease.Expires.IsZero() {
			earliest(immediately)
		} else {
			earliest(r.Lease.Expires)
		}
	}
	if end := p.ServiceEnd(r); r.OCSP.Enabled && now.Before(end) {
		if len(r.OCSP.ResponseDER) == 0 || r.OCSP.NextUpdate.IsZero() {
			earliest(immediately)
		} else if refresh := p.RefreshDue(r.OCSP.ThisUpdate, r.OCSP.NextUpdate); refresh.Before(end) {
			earliest(refresh)
		}
	}
	return due
}

// ServiceEnd is when OCSP service for r ends: NotAfter plus ExpiryMargin.
func (p DuePolicy) ServiceEnd(r *Record) time.Time { return r.NotAfter.Add(p.ExpiryMargin) }
