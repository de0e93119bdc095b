package queue

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// A write that fails must not fail the writes it shared a commit with.
func TestQueue_commit_IsolatesAFailedWrite(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ferry.db"), 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	q := &Queue{db: db}
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}))

	calls := map[string]int{}
	put := func(k string) write {
		return write{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			calls[k]++
			return tx.Bucket([]byte("b")).Put([]byte(k), []byte(k))
		}}
	}
	boom := errors.New("boom")
	bad := write{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
		calls["bad"]++
		_ = tx.Bucket([]byte("b")).Put([]byte("bad"), []byte("bad"))
		return boom
	}}
	batch := []write{put("a"), bad, put("c")}
	q.commit(batch)

	require.NoError(t, <-batch[0].done)
	assert.ErrorIs(t, <-batch[1].done, boom)
	require.NoError(t, <-batch[2].done)
	assert.Equal(t, map[string]int{"a": 2, "bad": 2, "c": 1}, calls, "the batch up to the failure, then each alone")
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		assert.Equal(t, "a", string(b.Get([]byte("a"))))
		assert.Nil(t, b.Get([]byte("bad")), "the failed write left nothing")
		assert.Equal(t, "c", string(b.Get([]byte("c"))))
		return nil
	}))
}
