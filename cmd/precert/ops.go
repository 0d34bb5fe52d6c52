package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/issuance"
	"github.com/certpipe/precert/ocspstate"
	"github.com/certpipe/precert/recovery"
)

func runInspect(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "inspect", "inspect --db FILE|DSN [--loglist FILE] [SERIAL]")
	db := dbFlag(fs)
	loglist := fs.String("loglist", "", "a v3 log list, to name the logs of stored SCTs")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if code := required(env, "inspect", map[string]string{"db": *db}); code != 0 {
		return code
	}
	if fs.NArg() > 1 {
		return fail(env, "inspect: one serial at most, got %d", fs.NArg())
	}
	store, err := openStore(ctx, *db, nil, true, false)
	if err != nil {
		return fail(env, "inspect: %v", err)
	}
	defer store.Close()
	if fs.NArg() == 0 {
		counts, err := store.Counts(ctx)
		if err != nil {
			return fail(env, "inspect: %v", err)
		}
		w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		total := 0
		for _, st := range ocspstate.States {
			fmt.Fprintf(w, "%s\t%d\n", st, counts[st])
			total += counts[st]
		}
		fmt.Fprintf(w, "total\t%d\n", total)
		w.Flush()
		return exitOK
	}
	serial, err := parseSerial(fs.Arg(0))
	if err != nil {
		return fail(env, "inspect: %v", err)
	}
	names := map[[32]byte]string{}
	if *loglist != "" {
		logs, err := loadLogs(*loglist)
		if err != nil {
			return fail(env, "inspect: %v", err)
		}
		for _, l := range logs {
			names[l.ID()] = l.Name
		}
	}
	// The serial may exist under several issuers.
	var found []*ocspstate.Record
	err = store.Scan(ctx, func(r *ocspstate.Record) error {
		if r.Serial.Cmp(serial) == 0 {
			found = append(found, r)
		}
		return nil
	})
	if err != nil {
		return fail(env, "inspect: %v", err)
	}
	if len(found) == 0 {
		return fail(env, "inspect: no record for serial %s in %s", ocspstate.SerialHex(serial), *db)
	}
	for i, r := range found {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		printRecord(env, r, names)
	}
	return exitOK
}

func printRecord(env *cliEnv, r *ocspstate.Record, logNames map[[32]byte]string) {
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "serial\t%s\n", ocspstate.SerialHex(r.Serial))
	fmt.Fprintf(w, "issuer\t%s\n", r.Issuer)
	fmt.Fprintf(w, "state\t%s\n", r.State)
	fmt.Fprintf(w, "validity\t%s to %s\n", ts(r.NotBefore), ts(r.NotAfter))
	switch {
	case !r.OCSP.Enabled:
		fmt.Fprintf(w, "ocsp\toff (nothing published)\n")
	case r.OCSP.Status == ocspstate.Revoked:
		fmt.Fprintf(w, "ocsp\trevoked at %s, reason %d\n", ts(r.OCSP.RevokedAt), r.OCSP.Reason)
	default:
		fmt.Fprintf(w, "ocsp\t%s\n", r.OCSP.Status)
	}
	if r.OCSP.Enabled {
		fmt.Fprintf(w, "thisUpdate\t%s\n", ts(r.OCSP.ThisUpdate))
		fmt.Fprintf(w, "nextUpdate\t%s\n", ts(r.OCSP.NextUpdate))
		fmt.Fprintf(w, "response\t%d bytes\n", len(r.OCSP.ResponseDER))
	}
	fmt.Fprintf(w, "due\t%s\n", ts(r.Due))
	var scts []string
	for _, raw := range r.SCTs {
		var s ct.SignedCertificateTimestamp
		if _, err := cttls.Unmarshal(raw, &s); err != nil {
			scts = append(scts, "unparseable")
			continue
		}
		name := logNames[s.LogID.KeyID]
		if name == "" {
			name = fmt.Sprintf("%x", s.LogID.KeyID[:8])
		}
		scts = append(scts, fmt.Sprintf("%s (%s)", name, time.UnixMilli(int64(s.Timestamp)).UTC().Format(time.RFC3339)))
	}
	if len(scts) == 0 {
		scts = []string{"-"}
	}
	fmt.Fprintf(w, "scts\t%s\n", strings.Join(scts, ", "))
	if r.Lease.Owner == "" {
		fmt.Fprintf(w, "lease\t-\n")
	} else {
		fmt.Fprintf(w, "lease\t%s until %s\n", r.Lease.Owner, ts(r.Lease.Expires))
	}
	fmt.Fprintf(w, "version\t%d\n", r.Version)
	fmt.Fprintf(w, "created\t%s\n", ts(r.Created))
	fmt.Fprintf(w, "updated\t%s\n", ts(r.Updated))
	w.Flush()
}

func runAudit(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "audit", "audit --db FILE|DSN --issuer PEM [--loglist FILE] [--expiry-margin DUR]")
	db := dbFlag(fs)
	issuerPath := fs.String("issuer", "", "PEM file with the issuing CA certificate(s)")
	loglist := fs.String("loglist", "", "a v3 log list, to verify the SCTs embedded in final certificates")
	margin := fs.Duration("expiry-margin", 0, "OCSP service past NotAfter the store was configured with")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if code := required(env, "audit", map[string]string{"db": *db, "issuer": *issuerPath}); code != 0 {
		return code
	}
	issuers, err := loadCerts("issuer", *issuerPath)
	if err != nil {
		return fail(env, "audit: %v", err)
	}
	a := &recovery.Auditor{Issuers: issuers, ExpiryMargin: *margin}
	if *loglist != "" {
		if a.Logs, err = loadLogs(*loglist); err != nil {
			return fail(env, "audit: %v", err)
		}
	}
	store, err := openStore(ctx, *db, issuers, true, false)
	if err != nil {
		return fail(env, "audit: %v", err)
	}
	defer store.Close()
	counts, err := store.Counts(ctx)
	if err != nil {
		return fail(env, "audit: %v", err)
	}
	vs, err := a.Audit(ctx, store, time.Now())
	if err != nil {
		return fail(env, "audit: %v", err)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	for _, v := range vs {
		fmt.Fprintln(env.stdout, v)
	}
	if len(vs) > 0 {
		fmt.Fprintf(env.stdout, "audit: %d violations over %d records\n", len(vs), total)
		return exitFailed
	}
	scts := "SCT signatures not checked (no --loglist)"
	if a.Logs != nil {
		scts = "SCT signatures verified"
	}
	fmt.Fprintf(env.stdout, "audit: clean, %d records (%s)\n", total, scts)
	return exitOK
}

func runSweep(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlags(env, "sweep", "sweep --db FILE|DSN --issuer PEM (--key PEM | --responder-cert PEM --responder-key PEM) [--loglist FILE --issuer-key PEM]")
	of := addOperatorFlags(fs, "the issuer's private key, to sign responses")
	loglist := fs.String("loglist", "", "a v3 log list: with it, precertificates left in flight are resubmitted and finished")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if code := required(env, "sweep", map[string]string{"db": *of.db, "issuer": *of.issuer}); code != 0 {
		return code
	}
	o, err := of.open(ctx, env, false)
	if err != nil {
		return fail(env, "sweep: %v", err)
	}
	defer o.store.Close()
	if o.signer == nil {
		return fail(env, "sweep: give --key, or --responder-cert and --responder-key, to sign responses")
	}
	var resumers []recovery.Resumer
	if *loglist != "" {
		p, err := o.pipeline(*loglist)
		if err != nil {
			return fail(env, "sweep: %v", err)
		}
		resumers = append(resumers, p)
	}
	s, err := recovery.New(recovery.Config{Store: o.store, Signers: []*ocspstate.ResponseSigner{o.signer}, Resumers: resumers, Logger: env.log})
	if err != nil {
		return fail(env, "sweep: %v", err)
	}
	rep, err := s.Sweep(ctx)
	if err != nil {
		return fail(env, "sweep: %v", err)
	}
	fmt.Fprintln(env.stdout, "sweep:", rep)
	for _, e := range rep.Errors {
		fmt.Fprintln(env.stdout, "  failed:", e)
	}
	if len(rep.Errors) > 0 {
		return exitFailed
	}
	return exitOK
}

// operator is a store opened for writing with what signs for its issuer.
type operator struct {
	env       *cliEnv
	store     ocspstate.Store
	issuer    *x509.Certificate
	chain     []*x509.Certificate
	issuerKey crypto.Signer // nil unless --key was given
	signer    *ocspstate.ResponseSigner
}

// dbHelp is --db's help, the same in every command.
const dbHelp = "the store: a bbolt file, or a postgres:// DSN (?schema=NAME picks the schema, default precert)"

func dbFlag(fs *flag.FlagSet) *string { return fs.String("db", "", dbHelp) }

// operatorFlags are the flags of the commands that sign responses: the
// store, the issuer, and the issuer's key or a delegated responder.
type operatorFlags struct{ db, issuer, key, respCert, respKey *string }

func addOperatorFlags(fs *flag.FlagSet, keyHelp string) *operatorFlags {
	return &operatorFlags{
		db:       dbFlag(fs),
		issuer:   fs.String("issuer", "", "PEM file with the issuing CA certificate"),
		key:      fs.String("key", "", keyHelp),
		respCert: fs.String("responder-cert", "", "a delegated OCSP responder certificate, to sign responses with instead of the issuer"),
		respKey:  fs.String("responder-key", "", "the delegated responder's private key"),
	}
}

// open opens the operator the flags name: it loads the issuer (the first
// certificate of --issuer; the rest is its chain), a response signer from
// --key or the delegated pair, and opens the store for writing.
func (f *operatorFlags) open(ctx context.Context, env *cliEnv, serving bool) (*operator, error) {
	db, issuerPath, key, respCert, respKey := *f.db, *f.issuer, *f.key, *f.respCert, *f.respKey
	certs, err := loadCerts("issuer", issuerPath)
	if err != nil {
		return nil, err
	}
	o := &operator{env: env, issuer: certs[0], chain: certs}
	switch {
	case key != "" && (respCert != "" || respKey != ""):
		return nil, fmt.Errorf("give --key or --responder-cert/--responder-key, not both")
	case (respCert == "") != (respKey == ""):
		return nil, fmt.Errorf("--responder-cert and --responder-key go together")
	case key != "":
		k, err := loadKey("key", key)
		if err != nil {
			return nil, err
		}
		o.issuerKey = k
		if o.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: o.issuer, Key: k}); err != nil {
			return nil, fmt.Errorf("--key %s: %v", key, strings.TrimPrefix(err.Error(), "ocspstate: "))
		}
	case respCert != "":
		rc, err := loadCerts("responder-cert", respCert)
		if err != nil {
			return nil, err
		}
		k, err := loadKey("responder-key", respKey)
		if err != nil {
			return nil, err
		}
		if o.signer, err = ocspstate.NewResponseSigner(ocspstate.SignerConfig{Issuer: o.issuer, Responder: rc[0], Key: k}); err != nil {
			return nil, fmt.Errorf("--responder-cert %s: %v", respCert, strings.TrimPrefix(err.Error(), "ocspstate: "))
		}
	}
	if o.store, err = openStore(ctx, db, []*x509.Certificate{o.issuer}, false, serving); err != nil {
		return nil, err
	}
	return o, nil
}

// pipeline builds a pipeline that can finish records in flight: it needs
// the issuer key and the CT logs.
func (o *operator) pipeline(loglist string) (*issuance.Pipeline, error) {
	if o.issuerKey == nil {
		return nil, fmt.Errorf("--loglist needs --key (the issuer's key) to finish certificates")
	}
	logs, err := loadLogs(loglist)
	if err != nil {
		return nil, err
	}
	sub, err := ctsubmit.New(ctsubmit.Config{Logs: logs, HTTPClient: &http.Client{}, Logger: o.env.log})
	if err != nil {
		return nil, err
	}
	return issuance.New(issuance.Config{
		Store: o.store, Issuer: o.issuer, IssuerKey: o.issuerKey, Chain: o.chain,
		Responses: o.signer, CT: sub, Logger: o.env.log,
	})
}
