package ctlogtest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/certpipe/precert/ctsubmit"
	"github.com/certpipe/precert/internal/ctlogtest"
	"github.com/certpipe/precert/internal/testpki"
)

// Run two logs on loopback, make one reject, and see the cause Submit
// reports for it.
func ExampleStart() {
	var (
		tl   []*ctlogtest.Log
		logs []*ctsubmit.Log
	)
	for _, name := range []string{"Alpha", "Beta"} {
		l, err := ctlogtest.Start(ctlogtest.Options{Name: name}) // Addr: "127.0.0.1:0" by default
		if err != nil {
			log.Fatal(err)
		}
		defer l.Close()
		tl = append(tl, l)
		logs = append(logs, l.Log())
	}
	tl[1].SetMode(ctlogtest.Reject)

	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		log.Fatal(err)
	}
	pre, err := ctlogtest.NewPrecert(ca, 90*24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	sub, err := ctsubmit.New(ctsubmit.Config{Logs: logs})
	if err != nil {
		log.Fatal(err)
	}
	_, err = sub.Submit(context.Background(), pre.Chain, pre.Cert.NotAfter)
	var e *ctsubmit.Error
	if errors.As(err, &e) {
		for _, le := range e.Logs {
			fmt.Println(le.Log.Name, le.Kind, le.Status)
		}
	}
	fmt.Println("submissions received by Beta:", len(tl[1].Submissions()))
	// Output:
	// Beta rejected 400
	// submissions received by Beta: 1
}

// Serve logs without a network, as tests under testing/synctest need.
func ExampleTransport() {
	a, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "a"})
	if err != nil {
		log.Fatal(err)
	}
	b, err := ctlogtest.NewUnstarted(ctlogtest.Options{Name: "b", Delay: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := ctsubmit.New(ctsubmit.Config{
		Logs:       []*ctsubmit.Log{a.Log(), b.Log()},
		HTTPClient: &http.Client{Transport: ctlogtest.Transport(a, b)},
	})
	if err != nil {
		log.Fatal(err)
	}
	ca, err := testpki.New(testpki.ECDSAP256)
	if err != nil {
		log.Fatal(err)
	}
	pre, err := ctlogtest.NewPrecert(ca, 90*24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	scts, err := sub.Submit(context.Background(), pre.Chain, pre.Cert.NotAfter)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(scts), "SCTs")
	// Output: 2 SCTs
}
