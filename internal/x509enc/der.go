package x509enc

import "github.com/certpipe/precert/internal/derw"

// DER tags this package writes.
const (
	tagBitString       = derw.BitString
	tagOctetString     = derw.OctetString
	tagOID             = derw.OID
	tagUTF8String      = derw.UTF8String
	tagPrintableString = derw.PrintableString
	tagSequence        = derw.Sequence
	tagSet             = derw.Set
	tagContext         = derw.Context     // | n: [n] IMPLICIT, primitive
	tagContextCons     = derw.ContextCons // | n: [n], constructed
)

// der is the writer the certificate encoder's methods hang on.
type der struct{ derw.Writer }
