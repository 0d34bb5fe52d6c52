package main

import (
	"strings"
	"testing"

	"github.com/certpipe/precert/internal/testpki"
)

// FuzzPEM feeds arbitrary bytes to the PEM readers behind --issuer, --key,
// --responder-cert and certificate arguments: an error that names the flag
// and the file, or a result, never a panic.
func FuzzPEM(f *testing.F) {
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	key, err := testpki.KeyPEM(ca.IntermediateKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(testpki.PEM(ca.Intermediate, ca.Root))
	f.Add(key)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := parseCerts("issuer", "x.pem", data)
		if err != nil && !strings.Contains(err.Error(), "--issuer x.pem") {
			t.Fatalf("error does not name the flag and file: %v", err)
		}
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		k, err := parseKey("key", "x.key", data)
		if err != nil && !strings.Contains(err.Error(), "--key x.key") {
			t.Fatalf("error does not name the flag and file: %v", err)
		}
		if err == nil && k == nil {
			t.Fatal("no error and no key")
		}
	})
}
