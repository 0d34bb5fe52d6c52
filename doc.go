// Package precert is a library a certificate authority embeds to issue RFC
// 6962 precertificates and final certificates with embedded SCTs, such that
// no precertificate can ever be seen — by a CT log, a monitor or a relying
// party — without a valid, signed OCSP response for its serial already
// durably stored, whatever crashes, hangs or CT failures happen along the
// way.
//
// This package holds only this overview; the code lives in the packages
// named below.
//
// # Why
//
// Mozilla Root Store Policy §5.4 requires OCSP for every certificate
// presumed to exist because a precertificate exists, even if the final
// certificate never does. CAs have failed this by enabling OCSP only after
// CT succeeded (precertificates whose submission failed were never
// enabled), by writing the status row outside the issuance transaction, and
// by responders serving junk for serials they did not know. Since BR SC-76
// an authoritative response must exist within 15 minutes of publication;
// here it exists before publication.
//
// # Guarantees
//
// Every test, benchmark and review in this module is measured against
// these:
//
//   - I1, commit before publish. Nothing leaves the process — a CT
//     submission, a certificate returned to the caller, a log line holding
//     a certificate — before it is durably committed. A precertificate
//     reaches a CT log only after it and a signed good OCSP response for its
//     serial were committed in one transaction.
//   - I2, every precertificate answers. From that commit until NotAfter
//     (plus a configurable margin) the responder returns a valid, signed,
//     fresh response, good or revoked, for every stored precertificate's
//     serial, whether or not a final certificate was ever issued.
//   - I3, serials are never reused. A serial is reserved durably before
//     anything is signed with it, and a reservation is never deleted, even
//     when abandoned.
//   - I4, the final certificate corresponds to its precertificate. It is
//     signed only if its TBS is the precertificate's TBS with the poison
//     extension removed and the SCT list added, every other byte the same;
//     at most one final certificate per serial is ever released.
//   - I5, never junk on the wire. The responder only sends well-formed
//     OCSPResponses: a stored response that fails validation is never
//     served; unknown serials get the constant 5-byte "unauthorized",
//     compiled in; bad requests get "malformedRequest".
//   - I6, fresh per the Baseline Requirements §4.9.9: validity between 8
//     hours and 10 days; re-signed at least 8 hours before nextUpdate and at
//     most 4 days after thisUpdate (before half the interval for intervals
//     under 16 hours).
//   - I7, recovery is idempotent and safe to race. Sweeping twice,
//     concurrently, or while pipelines work never finalizes twice, loses a
//     record or reuses a serial; leases protect work in flight.
//
// # The record
//
// One record per (issuer, serial) moves through these states:
//
//	Reserved ──► Precert ──► SCTs ──► Issued
//	   │            │
//	   ▼            ▼
//	Abandoned    CTFailed        (revocation is orthogonal, from Precert on)
//
// Each record carries a due time: when its lease expires or its response
// must be re-signed. Recovery is one loop over the due-time index: "take
// what is due, do it".
//
// # Packages
//
//   - ocspstate: the Record, the transition rules, the Store interface and
//     its bbolt implementation, OCSP response signing and validation.
//   - ocspstate/storetest: the conformance suite every Store must pass.
//   - ctsubmit: CT log submission under the Chrome and Apple policies, SCT
//     verification, log lists.
//   - issuance: the Pipeline that drives a serial from intent to final
//     certificate.
//   - recovery: the startup and background sweep, the auditor, the crash
//     harness.
//   - responder: the OCSP http.Handler and a live Probe of any responder.
//   - cmd/precert: the operator CLI, and the demo.
package precert
