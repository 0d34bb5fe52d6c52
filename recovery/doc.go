// Package recovery finds and finishes whatever a crash, a hang or a CT
// failure left behind, keeps every response fresh, and checks that the
// invariants of the module hold over a whole store.
//
// # Startup order
//
// A CA that embeds precert starts in this order:
//
//  1. open the store ([ocspstate.Open]);
//  2. run [Sweeper.Sweep] once: reservations whose lease expired are
//     abandoned, precertificates in flight are resumed through the
//     pipeline, missing, invalid or ageing responses are re-signed;
//  3. start the responder (and probe it, see responder.Probe), and accept
//     issuance;
//  4. keep [Sweeper.Run] going in the background.
//
// Nothing is lost if step 2 is skipped — every precertificate already has a
// signed response, committed before it was published — but the sweep is
// what turns a crash's leftovers into finished records promptly.
//
// # The sweep
//
// One loop over the store's due-time index: "take what is due, do it". Its
// cost grows with the number of due records, not with the size of the
// store. It is safe to run several sweepers at once, in several processes,
// while pipelines work: in-flight records are only taken through their
// leases, and every write is a compare-and-swap (invariant I7). A record
// that fails is reported in the [Report] and set aside; it never stops the
// sweep.
//
// # The auditor
//
// [Auditor.Audit] (and the shorthand [Audit]) checks invariants I1 to I6
// over every record without sharing code with the pipeline or the store's
// own validation: every record from Precert on has a response that parses,
// is signed by its issuer or a delegated responder, names its serial and
// issuer, says what the record says, and is fresh under BR §4.9.9; every
// final certificate corresponds to its precertificate and embeds SCTs that
// verify; no serial appears twice; no reservation outlived its lease. The
// CLI's audit command, the crash harness (package crashtest) and the tests
// use it.
package recovery
