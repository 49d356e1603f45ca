// A local S3-compatible server for eloquent-recovery's tests and demo: gofakes3 (MIT) on one
// loopback address, with one bucket made at start. Started by `scripts/stack.sh up s3`.
//
//	gofakes3-server -addr 127.0.0.1:9100 -bucket eloquent-backups [-db path/to/s3.bolt]
//
// With -db the objects live in a bolt file and survive a restart; without it they are in memory.
// Unfinished multipart uploads are kept in memory by gofakes3 either way.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "host:port to listen on (loopback by default)")
	bucket := flag.String("bucket", "eloquent-backups", "bucket created at start if missing")
	db := flag.String("db", "", "bolt database file; empty keeps everything in memory")
	flag.Parse()

	var backend gofakes3.Backend
	if *db == "" {
		backend = s3mem.New()
	} else {
		bolt, err := s3bolt.NewFile(*db)
		if err != nil {
			log.Fatalf("opening %s: %v", *db, err)
		}
		backend = bolt
	}
	if *bucket != "" {
		exists, err := backend.BucketExists(*bucket)
		if err != nil {
			log.Fatalf("checking bucket %s: %v", *bucket, err)
		}
		if !exists {
			if err := backend.CreateBucket(*bucket); err != nil {
				log.Fatalf("creating bucket %s: %v", *bucket, err)
			}
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.StdLog(log.New(os.Stderr, "", log.LstdFlags), gofakes3.LogErr, gofakes3.LogWarn)))
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listening on %s: %v", *addr, err)
	}
	log.Printf("gofakes3 serving bucket %q on http://%s", *bucket, listener.Addr())
	server := &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 30 * time.Second}
	log.Fatal(server.Serve(listener))
}
