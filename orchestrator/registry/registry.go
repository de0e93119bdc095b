// Package registry records where each job is deployed: the host's handle,
// the module digest and a key of everything that shapes the deployment, in
// bbolt. A restarted orchestrator finds its deployments here and does not
// redeploy a job whose key is unchanged.
package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferryrun/ferry/hosts/host"
)

var bucket = []byte("deployments")

// Record is one job's deployment on one host.
type Record struct {
	// Target is the plan's target ID (a provider ID); Job the job name.
	Target string `json:"target"`
	Job    string `json:"job"`
	// Key is Key(job) at deploy time: a changed module or limits change it.
	Key        string          `json:"key"`
	Deployment host.Deployment `json:"deployment"`
	DeployedAt time.Time       `json:"deployed_at"`
}

// Registry is the deployment registry. It is safe for concurrent use.
type Registry struct{ db *bolt.DB }

// Open returns the registry in db (the orchestrator's bbolt file, shared
// with its queue), creating its bucket.
func Open(db *bolt.DB) (*Registry, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return &Registry{db: db}, nil
}

// Key is the identity of a deployment: module digest, limits, allowed
// hosts. Deploying the same key again is a no-op.
func Key(job host.Job, digest string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%d\n%d\n%q\n", digest, job.Limits.MemoryMB, job.Limits.Timeout,
		job.Limits.MaxInputBytes, job.Limits.MaxOutputBytes, job.AllowHosts)
	return hex.EncodeToString(h.Sum(nil))
}

func id(target, job string) []byte { return []byte(target + "\x00" + job) }

// Get returns the record for job on target, if there is one.
func (r *Registry) Get(target, job string) (*Record, bool, error) {
	var rec *Record
	err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get(id(target, job))
		if b == nil {
			return nil
		}
		rec = &Record{}
		return json.Unmarshal(b, rec)
	})
	if err != nil {
		return nil, false, fmt.Errorf("registry: %s %s: %w", target, job, err)
	}
	return rec, rec != nil, nil
}

// Put records a deployment.
func (r *Registry) Put(rec *Record) error {
	if rec.Target == "" || rec.Job == "" {
		return errors.New("registry: record without target or job")
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(id(rec.Target, rec.Job), b) })
}

// Delete forgets job on target.
func (r *Registry) Delete(target, job string) error {
	return r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete(id(target, job)) })
}

// All returns every record.
func (r *Registry) All() ([]*Record, error) {
	var out []*Record
	err := r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			rec := &Record{}
			if err := json.Unmarshal(v, rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return out, nil
}
