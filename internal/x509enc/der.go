package x509enc

import "github.com/certpipe/precert/internal/derw"

// der is the writer the certificate encoder's methods hang on.
type der struct{ derw.Writer }
