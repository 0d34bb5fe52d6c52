// Package issuance drives a serial from intent to final certificate with
// embedded SCTs, committing each step before the next, so that no
// precertificate is ever submitted to a CT log — or seen by anyone — before
// it and a signed good OCSP response for its serial are durable together.
//
// # What to call first
//
// Build a [Pipeline] once, at startup, from a [Config]: the store, the
// issuer certificate and its key (any crypto.Signer), a response signer, and
// a CT submitter. Then call [Pipeline.Issue] for every certificate, from as
// many goroutines as you like:
//
//	p, err := issuance.New(issuance.Config{
//		Store:     store,                 // ocspstate.Open(...)
//		Issuer:    issuerCert,
//		IssuerKey: issuerKey,             // an HSM's crypto.Signer fits
//		Responses: responseSigner,        // ocspstate.NewResponseSigner(...)
//		CT:        submitter,             // ctsubmit.New(...)
//	})
//	res, err := p.Issue(ctx, &issuance.Request{...})
//
// # The steps
//
// [Pipeline.Issue] reserves a fresh serial with the unsigned precertificate
// TBS (the intent) and a lease; lints the precertificate, signed with a
// throwaway key of the issuer's type (zlint v3: CABF_BR, RFC5280, Mozilla,
// RFC6962, Chrome); signs it and checks its TBS equals the intent; signs the
// initial good response; commits precertificate, OCSPEnabled and response
// in one transaction (invariant I1 of the module); submits to CT and
// commits the verified SCTs; builds the final TBS from the precertificate's
// (RFC 6962 §3.1: poison replaced by the SCT list extension, nothing else
// changed), checks it corresponds ([Correspond], invariant I4), lints it and
// signs it; commits it; and only then returns it. Lint and correspondence
// sit on the only path to a signature: the signing step redeems a
// single-use token that only the checking step can mint.
//
// If CT cannot satisfy the policy, the record becomes CTFailed with its
// response good and refreshed until expiry — the precertificate may already
// sit in a log — and Issue returns an [*Error] matching [ErrCTFailed], from
// which errors.As extracts the *ctsubmit.Error with each log's cause.
//
// # Crashes, hangs and recovery
//
// Every step boundary is a [FaultPoint]; the comments at each in
// pipeline.go say what a crash there leaves and what recovery does with it.
// [Pipeline.Resume] continues a record from whatever durable state it is in,
// through the same code Issue uses; the recovery package calls it for every
// record whose lease expired. Leases are renewed while a worker works, and a
// worker that lost its lease cannot commit: each write checks the lease
// inside the store's compare-and-swap.
//
// # Revocation
//
// [Pipeline.Revoke] revokes any serial from Precert on — a precertificate
// whose final certificate never existed included — with a reason BR §7.2.2
// allows for subscriber certificates, re-signing its response in the same
// transaction. It is idempotent and never undone.
package issuance
