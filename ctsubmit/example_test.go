package ctsubmit_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
)

// Submit a precertificate to three CT logs run in-process, embed the SCTs
// in the final certificate and verify them there.
func ExampleSubmitter_Submit() {
	// Three logs of three operators; a real CA uses LoadLogList.
	var logs []*ctsubmit.Log
	for _, name := range []string{"Alpha 2026", "Beta 2026", "Gamma 2026"} {
		l, err := ctlogtest.Start(ctlogtest.Options{Name: name})
		if err != nil {
			log.Fatal(err)
		}
		defer l.Close()
		logs = append(logs, l.Log())
	}
	sub, err := ctsubmit.New(ctsubmit.Config{Logs: logs})
	if err != nil {
		log.Fatal(err)
	}

	// A 90-day precertificate, with its issuer chain.
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		log.Fatal(err)
	}
	pre, err := ctlogtest.NewPrecert(ca, 90*24*time.Hour, "www.example.test")
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scts, err := sub.Submit(ctx, pre.Chain, pre.Cert.NotAfter)
	if err != nil {
		log.Fatal(err) // an *ctsubmit.Error lists each log's cause
	}
	var raws [][]byte
	for _, s := range scts {
		fmt.Println("SCT from", s.Log.Name)
		raws = append(raws, s.Raw) // store these durably before issuing
	}

	ext, err := ctsubmit.SCTListExtension(raws)
	if err != nil {
		log.Fatal(err)
	}
	final, err := pre.Final(ext)
	if err != nil {
		log.Fatal(err)
	}
	embedded, err := ctsubmit.VerifyEmbedded(final, ca.Intermediate, logs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("embedded SCTs verified:", len(embedded))
	// Output:
	// SCT from Alpha 2026
	// SCT from Beta 2026
	// embedded SCTs verified: 2
}

// Write a v3 log list for some logs and load it back, as the demo does
// with its own logs.
func ExampleLoadLogList() {
	a, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "Alpha 2026", Operator: "Alpha"})
	if err != nil {
		log.Fatal(err)
	}
	b, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "Beta 2026", Operator: "Beta", Tiled: true})
	if err != nil {
		log.Fatal(err)
	}
	data, err := ctsubmit.MarshalLogList([]*ctsubmit.Log{a.Log(), b.Log()}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	logs, err := ctsubmit.LoadLogList(data)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range logs {
		fmt.Printf("%s, operated by %s, tiled: %v\n", l.Name, l.Operator, l.Tiled)
	}
	// Output:
	// Alpha 2026, operated by Alpha, tiled: false
	// Beta 2026, operated by Beta, tiled: true
}

// Both policies measure lifetime their own way: at exactly 180 days,
// Chrome asks for two SCTs and Apple for three.
func ExampleDefaultPolicy() {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []ctsubmit.Validity{
		{NotBefore: nb, NotAfter: nb.Add(180*24*time.Hour - time.Second)},
		{NotBefore: nb, NotAfter: nb.Add(180 * 24 * time.Hour)},
	} {
		chrome, _ := ctsubmit.ChromePolicy{}.Needed(v)
		apple, _ := ctsubmit.ApplePolicy{}.Needed(v)
		both, _ := ctsubmit.DefaultPolicy().Needed(v)
		fmt.Printf("%s: Chrome %d, Apple %d (%d days), default %d\n",
			v.NotAfter.Sub(v.NotBefore), chrome, apple, ctsubmit.ApplePolicy{}.LifetimeDays(v), both)
	}
	// Output:
	// 4319h59m59s: Chrome 2, Apple 2 (180 days), default 2
	// 4320h0m0s: Chrome 2, Apple 3 (181 days), default 3
}
