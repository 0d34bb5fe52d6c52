package issuance

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/ocspstate"
)

// Submitter submits a precertificate chain (the precertificate's DER
// followed by its issuer chain) to CT logs and returns SCTs that satisfy
// the CT policy for a certificate expiring at notAfter, each verified. On
// failure its error should list each log's cause. *ctsubmit.Submitter
// implements it.
type Submitter interface {
	Submit(ctx context.Context, chain [][]byte, notAfter time.Time) ([]ctsubmit.SCT, error)
}

// SerialGenerator returns fresh serial numbers: positive, at most 20
// octets, with at least 64 bits from a CSPRNG (BR §7.1).
type SerialGenerator interface {
	Serial() (*big.Int, error)
}

// RandomSerials generates serials of Bits random bits from crypto/rand.
type RandomSerials struct {
	// Bits of CSPRNG output per serial, 64 to 159. Zero means 128.
	Bits int
}

// Serial implements [SerialGenerator]. The top bit of the Bits-bit value
// is forced to 1 so every serial has the same length, and stays below 160
// bits so the DER encoding fits RFC 5280's 20 octets; Bits-1 bits are
// random.
func (g RandomSerials) Serial() (*big.Int, error) {
	bits := g.Bits
	if bits == 0 {
		bits = 128
	}
	if bits < 65 || bits > 159 {
		return nil, fmt.Errorf("issuance: serial size of %d bits is outside 65..159 (64 random bits at least, 20 octets at most)", bits)
	}
	buf := make([]byte, (bits+7)/8)
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		return nil, fmt.Errorf("issuance: reading random serial: %w", err)
	}
	n := new(big.Int).SetBytes(buf)
	n.SetBit(n, bits-1, 1)
	for i := bits; i < len(buf)*8; i++ {
		n.SetBit(n, i, 0)
	}
	return n, nil
}

// Config configures a [Pipeline]. Store, Issuer, IssuerKey, Responses and
// CT are required: there is no silent default for any part that holds
// state, signs, or publishes.
type Config struct {
	// Store holds every record. Required.
	Store ocspstate.Store
	// Issuer is the CA certificate that signs precertificates and final
	// certificates; IssuerKey its key (any crypto.Signer, so an HSM fits).
	// Required. Precertificates are signed by the issuer itself, never by
	// a precertificate signing certificate.
	Issuer    *x509.Certificate
	IssuerKey crypto.Signer
	// Chain is the issuer's own chain that follows the precertificate in
	// CT submissions: Issuer first, then its issuers up to (optionally) a
	// root the logs accept. Nil means just Issuer.
	Chain []*x509.Certificate
	// Responses signs OCSP responses for Issuer. Required.
	Responses *ocspstate.ResponseSigner
	// CT submits precertificates and collects SCTs. Required.
	CT Submitter
	// Linter checks every precertificate and final certificate before the
	// real key signs it. Nil means zlint v3 with DefaultLintSources.
	Linter Linter
	// DisableLint turns linting off (benchmarks, or a CA that lints
	// elsewhere on the same path). Linter is then ignored.
	DisableLint bool
	// Serials generates serial numbers. Nil means RandomSerials{} (128
	// bits).
	Serials SerialGenerator
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// LeaseDuration is how long a worker owns an in-flight record without
	// renewing; the pipeline renews at a third of it while it works.
	// Recovery takes over a record only after its lease expires. Zero
	// means 2 minutes. It must exceed the CT submitter's overall deadline
	// plus commit time, or a slow issuance may be taken over (which is
	// safe — the loser cannot commit — but wasteful).
	LeaseDuration time.Duration
	// Owner identifies this worker in leases. Empty means
	// "hostname/pid/random".
	Owner string
	// Faults, if set, is called at every step boundary (see FaultPoints).
	Faults FaultInjector
	// CommitTimeout bounds each store write that must finish even if the
	// caller's context is cancelled. Zero means 30 seconds.
	CommitTimeout time.Duration
	// Logger receives one line per outcome and per anomaly; it never
	// receives certificate or key material. Nil discards.
	Logger *slog.Logger
	// Registerer, if set, registers the pipeline's metrics.
	Registerer prometheus.Registerer
}

func (cfg *Config) check() error {
	var missing []string
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Issuer == nil {
		missing = append(missing, "Issuer")
	}
	if cfg.IssuerKey == nil {
		missing = append(missing, "IssuerKey")
	}
	if cfg.Responses == nil {
		missing = append(missing, "Responses")
	}
	if cfg.CT == nil {
		missing = append(missing, "CT")
	}
	if len(missing) > 0 {
		return fmt.Errorf("issuance: Config is missing %v", missing)
	}
	if cfg.Responses.IssuerID() != ocspstate.IssuerIDOf(cfg.Issuer) {
		return errors.New("issuance: Config.Responses signs for another issuer than Config.Issuer")
	}
	if !cfg.Issuer.IsCA || cfg.Issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("issuance: %q is not a CA certificate with keyCertSign", cfg.Issuer.Subject.String())
	}
	if cfg.Serials == nil {
		cfg.Serials = RandomSerials{}
	}
	if rs, ok := cfg.Serials.(RandomSerials); ok {
		if _, err := rs.Serial(); err != nil {
			return err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 2 * time.Minute
	}
	if cfg.LeaseDuration < time.Second {
		return fmt.Errorf("issuance: LeaseDuration %s is too short to renew", cfg.LeaseDuration)
	}
	if cfg.Owner == "" {
		cfg.Owner = DefaultOwner()
	}
	if cfg.CommitTimeout == 0 {
		cfg.CommitTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Chain) == 0 {
		cfg.Chain = []*x509.Certificate{cfg.Issuer}
	} else if !cfg.Chain[0].Equal(cfg.Issuer) {
		return errors.New("issuance: Config.Chain must start with Config.Issuer")
	}
	return nil
}

// DefaultOwner returns "hostname/pid/random", a lease owner unique to this
// process.
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}
