// Package ctsubmit submits precertificates to Certificate Transparency logs
// and returns verified SCTs that satisfy the Chrome and Apple CT policies,
// ready to embed in the final certificate.
//
// It follows RFC 6962 (add-pre-chain, §4.1; SCT signatures, §3.2; the SCT
// list extension, §3.3), the Chrome Certificate Transparency Policy
// (https://googlechrome.github.io/CertificateTransparency/ct_policy.html)
// and Apple's Certificate Transparency policy
// (https://support.apple.com/en-us/103214). Logs may be RFC 6962 logs or
// static-ct-api ("tiled") logs, which take add-pre-chain at their
// submission URL.
//
// # What to call first
//
// Load the logs — from Chrome's v3 log_list.json with [LoadLogList], or by
// building [Log] values — and make a [Submitter] with [New]:
//
//	logs, err := ctsubmit.LoadLogList(logListJSON)
//	...
//	sub, err := ctsubmit.New(ctsubmit.Config{Logs: logs})
//
// For each precertificate, only once it and a signed OCSP response for its
// serial are durably stored, call [Submitter.Submit] with the
// precertificate chain and its NotAfter. Store the [SCT.Raw] values it
// returns, build the final certificate's extension with
// [SCTListExtension], and check the issued certificate with
// [VerifyEmbedded]:
//
//	scts, err := sub.Submit(ctx, append([][]byte{precertDER}, issuerChainDER...), notAfter)
//	...
//	ext, err := ctsubmit.SCTListExtension(raws) // raws[i] = scts[i].Raw
//
// # How Submit races the logs
//
// Submit asks the [Policy] how many SCTs it needs ([Policy.Needed]),
// starts that many submissions at once — to logs of operators not yet
// covered, and to an RFC 6962 log before tiled ones — and starts one more
// every [Config.Stagger] while the policy is unmet. A failed submission is
// replaced at once. As soon as the SCTs verified so far satisfy the
// policy, the remaining submissions are cancelled and Submit returns. Each
// log has a deadline ([Config.PerLogTimeout]) and so does the call
// ([Config.OverallTimeout]), whatever the caller's context says: a CT log
// that hangs, or keeps answering 429 or 503, cannot hold an issuance
// forever. No goroutine started by Submit outlives it.
//
// # What is verified
//
// An SCT counts only once it is verified: its signature over the
// precertificate's Merkle tree leaf (the digitally-signed struct of
// §3.2), with the log's key and SHA-256 as §2.1.4 requires (a
// DigitallySigned naming another hash is refused); its LogID, which the
// signature does not cover, equal to the SHA-256 of the log's key; its
// timestamp no later than now plus [Config.MaxSkew] and no earlier than
// the precertificate's NotBefore minus MaxSkew; at most one SCT per log.
// Submit never returns an SCT that fails any of these. [VerifySCT] runs the same checks but the
// timestamp. [VerifyEmbedded] checks the SCTs embedded in a final
// certificate with certificate-transparency-go's verifier instead, as a
// check independent of this package's encoder: that verifier hashes with
// whatever hash an SCT names and ignores bytes after an ECDSA signature,
// both of which Submit and VerifySCT refuse.
//
// # Policies and certificate lifetime
//
// [ChromePolicy] and [ApplePolicy] implement the published rules for
// embedded SCTs; [DefaultPolicy] requires both. They differ in how they
// measure a certificate's lifetime. Chrome compares NotAfter − NotBefore
// with 180 days (more needs 3 SCTs, else 2; [ChromePolicy.Lifetime]).
// Apple counts RFC 5280's inclusive validity, NotAfter − NotBefore + 1 s,
// in days of 86,400 s with any remainder a further day: 180 days or less
// needs 2 SCTs with at most 1 per operator counting, 181 to 398 days
// needs 3 with at most 2 per operator ([ApplePolicy.LifetimeDays]). So a
// certificate with NotAfter = NotBefore + 180 days exactly needs 2 SCTs
// for Chrome and 3 for Apple, and the default policy asks for 3; to stay
// under both thresholds, end the validity one second earlier. Both
// policies require at least two log operators in practice, one log not
// retired at the time of check, and one RFC 6962 (non-tiled) log.
//
// # Failures
//
// When the policy is not met, Submit returns an [*Error] that lists, for
// every configured log, a [LogError] with its [Kind] (rejected with the
// HTTP status and an excerpt of the body, rate-limited, server error,
// timeout, transport, malformed response, invalid SCT and why, cancelled,
// not tried) and unwraps to each of them. The precertificate may already
// sit in some log even then: the CA must keep its OCSP response fresh.
//
// # Observability
//
// With [Config.Logger] set, every submission is logged (never a
// certificate); with [Config.Registerer] set, submissions and their
// latency are counted per log and outcome.
package ctsubmit
