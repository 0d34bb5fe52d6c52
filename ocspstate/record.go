package ocspstate

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"
)

// State is where a serial stands on its way from intent to final
// certificate. The zero value is not a valid state.
type State uint8

// The states of a record. See the package documentation for the graph.
const (
	// Reserved: the serial and the unsigned precertificate TBS (the intent)
	// are durable; nothing has been signed, nothing is public, OCSP is off.
	Reserved State = iota + 1
	// Precert: the signed precertificate, OCSPEnabled and a signed good
	// response were committed together. Only now may CT submission start.
	Precert
	// SCTs: the verified SCTs are durable; the final certificate is next.
	SCTs
	// Issued: the final certificate is durable and may be released.
	Issued
	// CTFailed: CT could not satisfy the policy. The precertificate may sit
	// in a log, so its OCSP stays enabled and refreshed until expiry.
	CTFailed
	// Abandoned: a reservation nobody will finish. The serial stays used and
	// is answered "unauthorized", as for any serial never issued.
	Abandoned
)

var stateNames = [...]string{
	Reserved:  "Reserved",
	Precert:   "Precert",
	SCTs:      "SCTs",
	Issued:    "Issued",
	CTFailed:  "CTFailed",
	Abandoned: "Abandoned",
}

// States lists every valid state in graph order.
var States = []State{Reserved, Precert, SCTs, Issued, CTFailed, Abandoned}

// String returns the state's name, as used in logs and the CLI.
func (s State) String() string {
	if s >= Reserved && s <= Abandoned {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Valid reports whether s is one of the six states.
func (s State) Valid() bool { return s >= Reserved && s <= Abandoned }

// InFlight reports whether a worker owns records in state s under a lease:
// Reserved, Precert and SCTs.
func (s State) InFlight() bool { return s == Reserved || s == Precert || s == SCTs }

// Published reports whether a precertificate exists for records in state s,
// so OCSP must answer for them: every state from Precert on except
// Abandoned.
func (s State) Published() bool {
	return s == Precert || s == SCTs || s == Issued || s == CTFailed
}

// ParseState is the inverse of [State.String].
func ParseState(name string) (State, error) {
	for _, s := range States {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("ocspstate: unknown state %q (want one of Reserved, Precert, SCTs, Issued, CTFailed, Abandoned)", name)
}

// Status is a certificate's OCSP status. Only good and revoked are ever
// signed: this package never signs "unknown" for a serial it holds.
type Status uint8

const (
	// Good is RFC 6960's good: not revoked.
	Good Status = iota + 1
	// Revoked is RFC 6960's revoked, with a time and an RFC 5280 reason.
	Revoked
)

// String returns "good" or "revoked", as OCSP clients print them.
func (s Status) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// IssuerID names an issuing CA: SHA-256 over its subject name and
// subjectPublicKeyInfo, the two things an OCSP CertID hashes. Certificates
// of the same CA (re-issued or cross-signed with the same name and key) share
// an IssuerID, as they share OCSP CertIDs.
type IssuerID [32]byte

// IssuerIDOf returns the IssuerID of issuer.
func IssuerIDOf(issuer *x509.Certificate) IssuerID {
	h := sha256.New()
	h.Write(issuer.RawSubject)
	h.Write(issuer.RawSubjectPublicKeyInfo)
	var id IssuerID
	h.Sum(id[:0])
	return id
}

// String returns the first 8 bytes in hex, enough to tell issuers apart in
// logs.
func (id IssuerID) String() string { return hex.EncodeToString(id[:8]) }

// MaxSerialOctets is RFC 5280 §4.1.2.2's limit on the serial number's
// encoded length.
const MaxSerialOctets = 20

// CheckSerial reports whether serial is usable: positive, and at most 20
// octets once DER-encoded (a leading zero octet counts when the top bit is
// set).
func CheckSerial(serial *big.Int) error {
	if serial == nil {
		return fmt.Errorf("%w: serial is nil", ErrInvalidRecord)
	}
	if serial.Sign() <= 0 {
		return fmt.Errorf("%w: serial %s is not positive (RFC 5280 §4.1.2.2)", ErrInvalidRecord, serial)
	}
	if n := serialOctets(serial); n > MaxSerialOctets {
		return fmt.Errorf("%w: serial %x encodes to %d octets, more than RFC 5280's %d", ErrInvalidRecord, serial, n, MaxSerialOctets)
	}
	return nil
}

func serialOctets(serial *big.Int) int {
	n := (serial.BitLen() + 7) / 8
	if serial.BitLen()%8 == 0 {
		n++ // DER needs a leading zero to keep it positive
	}
	return n
}

// SerialHex formats a serial the way the CLI and file names do: lowercase
// hex, no separators, even length.
func SerialHex(serial *big.Int) string {
	if serial == nil {
		return "<nil>"
	}
	s := serial.Text(16)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// Lease says which worker owns an in-flight record, and until when. Another
// worker may take the record only once Expires has passed; a worker that
// lost its lease can no longer commit (see [Record.CheckLease]).
type Lease struct {
	Owner   string
	Expires time.Time
}

// OCSP is the OCSP half of a record.
type OCSP struct {
	// Enabled is set, together with the first signed response, when the
	// record enters Precert, and never cleared.
	Enabled bool
	// Status is Good or Revoked once Enabled; revocation is never undone.
	Status Status
	// RevokedAt and Reason hold the revocation time and RFC 5280 CRLReason
	// code (0 meaning "no reason given") once Status is Revoked.
	RevokedAt time.Time
	Reason    int
	// ResponseDER is the signed response currently served, and ThisUpdate
	// and NextUpdate are copied from it. Set them with
	// [Record.SetResponse].
	ResponseDER []byte
	ThisUpdate  time.Time
	NextUpdate  time.Time
}

// Record is the durable state of one serial under one issuer. Stores keep
// exactly one per (Issuer, Serial) and never delete it (invariant I3).
//
// Records handed out by a [Store] are copies: changing one changes nothing
// until it goes through [Store.Update].
type Record struct {
	Issuer IssuerID
	Serial *big.Int
	State  State

	// IntentDER is the unsigned precertificate TBSCertificate, poison
	// included, written at reservation. The signed precertificate's TBS
	// must equal it byte for byte.
	IntentDER []byte
	// PrecertDER is the signed precertificate, from Precert on.
	PrecertDER []byte
	// SCTs holds the TLS-encoded SignedCertificateTimestamps that satisfied
	// the CT policy, from state SCTs on.
	SCTs [][]byte
	// FinalDER is the final certificate, in state Issued only.
	FinalDER []byte

	// NotBefore and NotAfter are the certificate's validity, from the
	// intent. OCSP answers until NotAfter plus the store's margin.
	NotBefore time.Time
	NotAfter  time.Time

	OCSP  OCSP
	Lease Lease

	// Created and Updated are set by the store. Version starts at 1 and
	// grows by one on every committed change; stores use it for
	// compare-and-swap.
	Created time.Time
	Updated time.Time
	Version uint64
	// Due is when something must next happen to the record (see
	// [DuePolicy.Due]); the zero time means never. The store computes it on
	// every write; values set by callers are ignored.
	Due time.Time
}

// Key returns the record's (issuer, serial) key as used by the stores.
func (r *Record) Key() Key { return NewKey(r.Issuer, r.Serial) }

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := *r
	if r.Serial != nil {
		c.Serial = new(big.Int).Set(r.Serial)
	}
	c.IntentDER = bytes.Clone(r.IntentDER)
	c.PrecertDER = bytes.Clone(r.PrecertDER)
	c.FinalDER = bytes.Clone(r.FinalDER)
	c.OCSP.ResponseDER = bytes.Clone(r.OCSP.ResponseDER)
	if r.SCTs != nil {
		c.SCTs = make([][]byte, len(r.SCTs))
		for i, s := range r.SCTs {
			c.SCTs[i] = bytes.Clone(s)
		}
	}
	return &c
}

// Equal reports whether r and o hold the same values in every field.
func (r *Record) Equal(o *Record) bool {
	if r == nil || o == nil {
		return r == o
	}
	if r.Issuer != o.Issuer || r.State != o.State || r.Version != o.Version {
		return false
	}
	if (r.Serial == nil) != (o.Serial == nil) || (r.Serial != nil && r.Serial.Cmp(o.Serial) != 0) {
		return false
	}
	if !bytes.Equal(r.IntentDER, o.IntentDER) || !bytes.Equal(r.PrecertDER, o.PrecertDER) || !bytes.Equal(r.FinalDER, o.FinalDER) {
		return false
	}
	if len(r.SCTs) != len(o.SCTs) {
		return false
	}
	for i := range r.SCTs {
		if !bytes.Equal(r.SCTs[i], o.SCTs[i]) {
			return false
		}
	}
	a, b := r.OCSP, o.OCSP
	if a.Enabled != b.Enabled || a.Status != b.Status || a.Reason != b.Reason ||
		!a.RevokedAt.Equal(b.RevokedAt) || !bytes.Equal(a.ResponseDER, b.ResponseDER) ||
		!a.ThisUpdate.Equal(b.ThisUpdate) || !a.NextUpdate.Equal(b.NextUpdate) {
		return false
	}
	return r.NotBefore.Equal(o.NotBefore) && r.NotAfter.Equal(o.NotAfter) &&
		r.Lease.Owner == o.Lease.Owner && r.Lease.Expires.Equal(o.Lease.Expires) &&
		r.Created.Equal(o.Created) && r.Updated.Equal(o.Updated) && r.Due.Equal(o.Due)
}

// SetResponse stores a freshly signed response and its validity interval.
func (r *Record) SetResponse(resp *Response) {
	r.OCSP.ResponseDER = bytes.Clone(resp.DER)
	r.OCSP.ThisUpdate = resp.ThisUpdate
	r.OCSP.NextUpdate = resp.NextUpdate
}

// CheckLease returns nil if owner may write r at now: r is not in flight,
// or owner holds its lease, or the lease has expired. Otherwise it returns
// an error wrapping [ErrLeaseHeld]. Call it at the top of every closure
// passed to [Store.Update] by a worker that acts on in-flight records: with
// the store's compare-and-swap, a worker that lost its lease cannot commit.
func (r *Record) CheckLease(owner string, now time.Time) error {
	if !r.State.InFlight() || r.Lease.Owner == "" || r.Lease.Owner == owner || !now.Before(r.Lease.Expires) {
		return nil
	}
	return fmt.Errorf("%w: serial %s is leased to %q until %s", ErrLeaseHeld,
		SerialHex(r.Serial), r.Lease.Owner, r.Lease.Expires.UTC().Format(time.RFC3339))
}

// HoldsLease reports whether owner holds an unexpired lease on r at now.
func (r *Record) HoldsLease(owner string, now time.Time) bool {
	return r.Lease.Owner == owner && now.Before(r.Lease.Expires)
}

// String summarises the record for logs: issuer, serial, state, version.
// It never includes certificate or key material.
func (r *Record) String() string {
	return fmt.Sprintf("%s/%s %s v%d", r.Issuer, SerialHex(r.Serial), r.State, r.Version)
}

// Key is a record's identity in a store: the issuer ID followed by the
// serial's big-endian magnitude.
type Key string

// NewKey builds the key of (issuer, serial).
func NewKey(issuer IssuerID, serial *big.Int) Key {
	if serial == nil {
		return Key(issuer[:])
	}
	return Key(appendKey(make([]byte, 0, keyBufSize), issuer, serial))
}

// keyBufSize fits any key: the issuer ID and a serial's magnitude.
const keyBufSize = len(IssuerID{}) + MaxSerialOctets

// appendKey appends the key of (issuer, serial) to b, without allocating
// when b has room (keyBufSize).
func appendKey(b []byte, issuer IssuerID, serial *big.Int) []byte {
	b = append(b, issuer[:]...)
	n := (serial.BitLen() + 7) / 8
	start := len(b)
	for range n {
		b = append(b, 0)
	}
	serial.FillBytes(b[start:])
	return b
}

// Split returns the issuer and serial of k.
func (k Key) Split() (IssuerID, *big.Int, error) { return splitKey([]byte(k)) }

// splitKey returns the issuer and serial of a record key.
func splitKey(key []byte) (IssuerID, *big.Int, error) {
	var id IssuerID
	if len(key) <= len(id) {
		return id, nil, fmt.Errorf("%w: key of %d bytes is too short", ErrCorrupt, len(key))
	}
	copy(id[:], key)
	return id, new(big.Int).SetBytes(key[len(id):]), nil
}
