package ctlogtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// NewKeys generates n log keys and saves them in dir (log0.key, …), so
// that processes sharing dir — a crash test's parent and its children —
// run logs with the same identities. LoadKeys reads them back.
func NewKeys(dir string, n int) ([]*ecdsa.PrivateKey, error) {
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyPath(dir, i), der, 0o600); err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
}

// LoadKeys reads the n log keys NewKeys saved in dir.
func LoadKeys(dir string, n int) ([]*ecdsa.PrivateKey, error) {
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		der, err := os.ReadFile(keyPath(dir, i))
		if err != nil {
			return nil, err
		}
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("ctlogtest: %s: %w", keyPath(dir, i), err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ctlogtest: %s holds a %T, not an ECDSA key", keyPath(dir, i), k)
		}
		keys[i] = ec
	}
	return keys, nil
}

func keyPath(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("log%d.key", i)) }
