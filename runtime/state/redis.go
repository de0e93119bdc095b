package state

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in a Redis server that every host of a job can reach.
//
// An entry is a hash "ferry:{ns}:k:KEY" with field v (the version) and
// field d (the value; absent in a tombstone); an idempotency record is a
// string "ferry:{ns}:done:ID" that Redis expires itself. The braces are a
// cluster hash tag: all of a namespace lives in one slot, so one script
// can touch any of its keys. A commit is one Lua script, which Redis runs
// atomically.
type Redis struct {
	c     *redis.Client
	where string // the URL without its password, for errors
}

var _ Store = (*Redis)(nil)

// maxRedisCommitKeys bounds the keys one commit sends: reads, writes and
// the idempotency record. Far above what an invocation touches, it keeps a
// runaway transaction from building a command Redis would refuse or take
// long to run while it blocks every other client.
const maxRedisCommitKeys = 4096

// commitScript checks the idempotency record and every version read, then
// applies the writes and records the invocation, all or nothing.
//
// KEYS: [record], read keys..., written keys...
// ARGV: read count, record TTL in ms (0: no record), output,
// read versions..., then op ("s" set, "d" delete) and value per write.
//
// Versions are compared as the decimal strings HINCRBY stores, so they
// never pass through Lua's doubles.
var commitScript = redis.NewScript(`
local nr = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local k = 0
if ttl > 0 then
  k = 1
  if redis.call('EXISTS', KEYS[1]) == 1 then return 'duplicate' end
end
for i = 1, nr do
  local v = redis.call('HGET', KEYS[k + i], 'v') or '0'
  if v ~= ARGV[3 + i] then return 'conflict' end
end
local a = 4 + nr
for i = k + nr + 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'v', 1)
  if ARGV[a] == 's' then
    redis.call('HSET', KEYS[i], 'd', ARGV[a + 1])
  else
    redis.call('HDEL', KEYS[i], 'd')
  end
  a = a + 2
end
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
end
return 'ok'
`)

// OpenRedis connects to the Redis server at rawURL,
// redis://[user:password@]host:port/db or rediss:// for TLS, and checks
// that it answers.
//
// The client never retries a command on its own: a commit whose reply was
// lost may have been applied, and retrying it would report a conflict (or
// a duplicate) for a commit that took effect. Such an error is returned as
// it is, and the caller's idempotency key settles what happened.
func OpenRedis(ctx context.Context, rawURL string) (*Redis, error) {
	where := Redacted(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("open state store %s: not a URL: %w", where, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("open state store %s: want redis:// or rediss://", where)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("open state store %s: no host", where)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", where, err)
	}
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("open state store %s: redis does not answer: %w", where, err)
	}
	return &Redis{c: c, where: where}, nil
}

// Redacted is rawURL with its password replaced, for logs and errors. A
// string that does not parse as a URL is not shown at all.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// String is the store's URL without its password.
func (r *Redis) String() string { return r.where }

func entryKey(ns, key string) string { return "ferry:{" + ns + "}:k:" + key }
func doneKey(ns, id string) string   { return "ferry:{" + ns + "}:done:" + id }

// Get implements Store.
func (r *Redis) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	e, err := r.read(ctx, "get", ns, key)
	return e.Value, e.Found, err
}

// Read implements Store.
func (r *Redis) Read(ctx context.Context, ns, key string) (Entry, error) {
	return r.read(ctx, "read", ns, key)
}

func (r *Redis) read(ctx context.Context, op, ns, key string) (Entry, error) {
	vals, err := r.c.HMGet(ctx, entryKey(ns, key), "v", "d").Result()
	if err != nil {
		return Entry{}, r.wrap(op, ns, key, err)
	}
	var e Entry
	if v, ok := vals[0].(string); ok {
		if e.Version, err = strconv.ParseUint(v, 10, 64); err != nil {
			return Entry{}, r.wrap(op, ns, key, fmt.Errorf("corrupt version %q", v))
		}
	}
	if d, ok := vals[1].(string); ok {
		e.Value, e.Found = []byte(d), true
	}
	return e, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, ns, key string, value []byte) error {
	return r.wrap("set", ns, key, r.commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Value: value}}}))
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, ns, key string) error {
	return r.wrap("delete", ns, key, r.commit(ctx, ns, &Commit{Writes: map[string]Write{key: {Delete: true}}}))
}

// Commit implements Store.
func (r *Redis) Commit(ctx context.Context, ns string, c *Commit) error {
	return r.wrap("commit", ns, "", r.commit(ctx, ns, c))
}

func (r *Redis) commit(ctx context.Context, ns string, c *Commit) error {
	n := len(c.Reads) + len(c.Writes)
	if c.Done != "" {
		n++
	}
	if n > maxRedisCommitKeys {
		return fmt.Errorf("%d keys in one commit; at most %d", n, maxRedisCommitKeys)
	}
	keys := make([]string, 0, n)
	args := make([]any, 3, 3+len(c.Reads)+2*len(c.Writes))
	args[0], args[1], args[2] = len(c.Reads), 0, ""
	if c.Done != "" {
		keys = append(keys, doneKey(ns, c.Done))
		// PX takes whole milliseconds; round up so a short TTL is not 0.
		args[1], args[2] = (doneTTL(c.TTL) + time.Millisecond - 1).Milliseconds(), c.Output
	}
	for k, v := range c.Reads {
		keys = append(keys, entryKey(ns, k))
		args = append(args, v)
	}
	for k, w := range c.Writes {
		keys = append(keys, entryKey(ns, k))
		if w.Delete {
			args = append(args, "d", "")
		} else {
			args = append(args, "s", w.Value)
		}
	}
	res, err := commitScript.Run(ctx, r.c, keys, args...).Text()
	if err != nil {
		return err
	}
	switch res {
	case "ok":
		return nil
	case "conflict":
		return ErrConflict
	case "duplicate":
		return ErrDuplicate
	}
	return fmt.Errorf("unexpected reply %q from the commit script", res)
}

// Done implements Store.
func (r *Redis) Done(ctx context.Context, ns, id string) ([]byte, bool, error) {
	out, err := r.c.Get(ctx, doneKey(ns, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.wrap("done", ns, id, err)
	}
	return out, true, nil
}

// Close implements Store.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close state store %s: %w", r.where, err)
	}
	return nil
}

func (r *Redis) wrap(op, ns, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.ErrClosed) {
		err = ErrClosed
	}
	return fmt.Errorf("state %s in %s: %w", describe(op, ns, key), r.where, err)
}
