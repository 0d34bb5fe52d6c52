package ctlogtest

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"slices"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/testpki"
)

// Precert is a precertificate issued by a testpki hierarchy's
// intermediate, ready to submit, with what it takes to issue the
// corresponding final certificate.
type Precert struct {
	// CA issued the precertificate.
	CA *testpki.CA
	// Template is the certificate's template, serial number set, with
	// neither the poison nor an SCT list.
	Template *x509.Certificate
	// Key is the subscriber's key.
	Key crypto.Signer
	// Cert is the precertificate: Template plus the poison extension.
	Cert *x509.Certificate
	// Chain is what to submit: Cert's DER, then the intermediate's and
	// the root's (testpki's ChainDER).
	Chain [][]byte
}

// NewPrecert issues a precertificate from ca's intermediate for a fresh
// subscriber key, from ca.LeafTemplate(lifetime, dnsNames...). Its
// NotBefore is an hour before now, by the current clock (the fake one
// under testing/synctest).
func NewPrecert(ca *testpki.CA, lifetime time.Duration, dnsNames ...string) (*Precert, error) {
	key, err := testpki.NewKey(ca.KeyType)
	if err != nil {
		return nil, fmt.Errorf("ctlogtest: %w", err)
	}
	tmpl := ca.LeafTemplate(lifetime, dnsNames...)
	tmpl.SerialNumber = testpki.RandomSerial()
	pre := *tmpl
	pre.ExtraExtensions = append(slices.Clone(tmpl.ExtraExtensions),
		ctsubmit.PoisonExtension())
	cert, err := ca.IssueLeaf(&pre, key.Public())
	if err != nil {
		return nil, fmt.Errorf("ctlogtest: issuing precertificate: %w", err)
	}
	return &Precert{
		CA:       ca,
		Template: tmpl,
		Key:      key,
		Cert:     cert,
		Chain:    append([][]byte{cert.Raw}, ca.ChainDER()...),
	}, nil
}

// Final issues the final certificate: Template with ext (from
// [ctsubmit.SCTListExtension]) where the precertificate has the poison,
// so that its TBS is the precertificate's with the poison replaced.
func (p *Precert) Final(ext pkix.Extension) (*x509.Certificate, error) {
	fin := *p.Template
	fin.ExtraExtensions = append(slices.Clone(p.Template.ExtraExtensions), ext)
	cert, err := p.CA.IssueLeaf(&fin, p.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("ctlogtest: issuing final certificate: %w", err)
	}
	return cert, nil
}
