package issuance

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Linter checks a certificate before the issuer's key signs it. The
// pipeline hands it a copy signed with a throwaway key of the same type
// and size, whose TBS is byte for byte the one the real key will sign; an
// error stops issuance before the real key has signed anything.
type Linter interface {
	Lint(cert *x509.Certificate) error
}

// DefaultLintSources are the zlint sources the default linter runs.
var DefaultLintSources = lint.SourceList{
	lint.CABFBaselineRequirements,
	lint.RFC5280,
	lint.MozillaRootStorePolicy,
	lint.RFC6962,
	lint.ChromeRootStorePolicy,
}

// ZLinter runs zlint v3 over certificates.
type ZLinter struct {
	registry   lint.Registry
	failOnWarn bool
}

// ZLintConfig configures [NewZLinter].
type ZLintConfig struct {
	// Sources are the zlint sources to run. Nil means DefaultLintSources.
	Sources lint.SourceList
	// Ignore names lints to skip, for documented exceptions of the CA's
	// own policy. Keep it short and explained.
	Ignore []string
	// FailOnWarn also stops issuance on warnings, not only on errors and
	// fatal results.
	FailOnWarn bool
}

// NewZLinter returns a zlint linter for cfg.
func NewZLinter(cfg ZLintConfig) (*ZLinter, error) {
	if cfg.Sources == nil {
		cfg.Sources = DefaultLintSources
	}
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: cfg.Sources, ExcludeNames: cfg.Ignore})
	if err != nil {
		return nil, fmt.Errorf("issuance: configuring zlint: %w", err)
	}
	return &ZLinter{registry: reg, failOnWarn: cfg.FailOnWarn}, nil
}

// LintError lists the lints a certificate failed.
type LintError struct {
	// Failed maps each failed lint's name to its status and details.
	Failed map[string]string
}

func (e *LintError) Error() string {
	names := make([]string, 0, len(e.Failed))
	for n := range e.Failed {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " (" + e.Failed[n] + ")"
	}
	return "issuance: lint failed: " + strings.Join(parts, "; ")
}

// Lint implements [Linter].
func (z *ZLinter) Lint(cert *x509.Certificate) error {
	zc, err := zx509.ParseCertificate(cert.Raw)
	if err != nil {
		return fmt.Errorf("issuance: zlint cannot parse the certificate: %w", err)
	}
	res := zlint.LintCertificateEx(zc, z.registry)
	failed := map[string]string{}
	for name, r := range res.Results {
		switch {
		case r.Status == lint.Error || r.Status == lint.Fatal || (z.failOnWarn && r.Status == lint.Warn):
			detail := r.Status.String()
			if r.Details != "" {
				detail += ": " + r.Details
			}
			failed[name] = detail
		}
	}
	if len(failed) > 0 {
		return &LintError{Failed: failed}
	}
	return nil
}
