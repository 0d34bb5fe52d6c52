// Package ocspstate holds the durable state of every serial a CA has used:
// one [Record] per (issuer, serial), its [State], its OCSP status and signed
// response, and the rules every change must follow. It also signs and
// validates OCSP responses (RFC 6960), since a response is part of the
// state: no store commits an OCSP-enabled record whose response does not
// validate.
//
// # What to call first
//
// Open the embedded store with [Open], giving it the issuer certificates
// whose responses it must validate:
//
//	store, err := ocspstate.Open("/var/lib/ca/ocsp.db", ocspstate.Options{
//		Issuers: []*x509.Certificate{issuer},
//	})
//
// Sign responses with a [ResponseSigner] (the issuer's key or a delegated
// responder certificate), and check any response with [Validate] or a
// [Validator]. The issuance pipeline, the recovery sweeper and the responder
// in sibling packages are built on these; most CAs never write a record by
// hand.
//
// # States
//
//	Reserved ──► Precert ──► SCTs ──► Issued
//	   │            │
//	   ▼            ▼
//	Abandoned    CTFailed
//
// A serial is Reserved, with the unsigned precertificate TBS (the intent)
// and a lease, before anything is signed with it. It enters Precert only
// together with the signed precertificate, OCSPEnabled and a signed good
// response, in one transaction: the precertificate may be submitted to CT
// only after that commit. SCTs and Issued follow as the SCTs and the final
// certificate become durable. CTFailed keeps OCSP enabled and refreshed,
// because the precertificate may already sit in a log. Abandoned ends a
// reservation nothing was published for; its serial is never reused and is
// answered "unauthorized". Revocation (good → revoked) is orthogonal, allowed
// from Precert on and never undone. [CheckTransition] is the full rule set;
// every backend calls it through [CheckUpdate].
//
// # Due times
//
// Every record carries the time something must next happen to it: its lease
// expires (in flight), or its response must be re-signed under BR §4.9.9
// (see [RefreshDeadline] and [DuePolicy]). Stores index it, so one loop —
// "take what is due, do it" ([Store.Due]) — covers startup recovery, stalled
// issuance, missing responses and routine refresh, at a cost that grows with
// the work due, not the size of the store.
//
// # Concurrency and durability
//
// [Store.Update] is a read-modify-write in one transaction and a
// compare-and-swap on [Record.Version]: its closure may run more than once,
// so it only reads and changes the record — sign before, publish after.
// Leases ([Record.CheckLease]) keep two workers off one in-flight record; a
// worker that lost its lease cannot commit. When a store method returns
// nil, what it wrote is on disk: [BoltStore] never runs with NoSync, and it
// coalesces concurrent writers into shared commits instead.
//
// # Responses
//
// Only good and revoked are signed; x/crypto/ocsp would otherwise write a
// response with no certStatus, which its own parser reads as revoked.
// Validity intervals count inclusively, per BR §4.9.9, and must lie within
// 8 hours and 10 days. Every response a [ResponseSigner] returns has been
// parsed and checked before it leaves the signer, and the signer proves its
// key against its certificate when it is created.
package ocspstate
