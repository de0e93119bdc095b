package registry_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/orchestrator/registry"
)

func TestRegistry_PersistsAcrossOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	r, err := registry.Open(db)
	require.NoError(t, err)
	job := host.Job{Name: "echo", Limits: host.Limits{MemoryMB: 64, Timeout: time.Second}}
	key := registry.Key(job, "sha256:aa")
	rec := &registry.Record{Target: "custom/h", Job: "echo", Key: key,
		Deployment: host.Deployment{ID: "echo-123", Job: "echo", Digest: "sha256:aa", Host: "custom/h"}, DeployedAt: time.Now().UTC()}
	require.NoError(t, r.Put(rec))
	require.Error(t, r.Put(&registry.Record{}))
	require.NoError(t, db.Close())

	db, err = bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	r, err = registry.Open(db)
	require.NoError(t, err)
	got, ok, err := r.Get("custom/h", "echo")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "echo-123", got.Deployment.ID)
	assert.Equal(t, key, got.Key)
	_, ok, err = r.Get("custom/h", "other")
	require.NoError(t, err)
	assert.False(t, ok)

	job.Limits.MemoryMB = 128
	assert.NotEqual(t, key, registry.Key(job, "sha256:aa"), "changed limits change the key")
	assert.NotEqual(t, key, registry.Key(host.Job{Name: "echo", Limits: host.Limits{MemoryMB: 64, Timeout: time.Second}}, "sha256:bb"))

	all, err := r.All()
	require.NoError(t, err)
	assert.Len(t, all, 1)
	require.NoError(t, r.Delete("custom/h", "echo"))
	all, err = r.All()
	require.NoError(t, err)
	assert.Empty(t, all)
}
