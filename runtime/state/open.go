package state

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// schemeRE matches a spec that names a URL scheme rather than a file path.
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// Open opens the store spec names:
//
//   - "memory": a new in-memory store (NewMemory);
//   - redis://[user:password@]host:port/db or rediss://…: a Redis server
//     (OpenRedis);
//   - dynamodb://TABLE?region=…&endpoint=…&create=true: a DynamoDB table
//     (OpenDynamo), with the SDK's default credentials;
//   - file://PATH or a plain PATH: a bbolt file (OpenBolt). PATH is taken
//     as written, so file:///var/lib/ferry/state.db is an absolute path.
//
// Any other URL scheme is an error that wraps errors.ErrUnsupported.
func Open(ctx context.Context, spec string) (Store, error) {
	if spec == "memory" {
		return NewMemory(), nil
	}
	m := schemeRE.FindStringSubmatch(spec)
	if m == nil {
		if spec == "" {
			return nil, errors.New("open state store: no store named; want memory, a file path, file://PATH, redis://, rediss:// or dynamodb://")
		}
		return OpenBolt(spec)
	}
	switch strings.ToLower(m[1]) {
	case "file":
		path := spec[len(m[0]):]
		if path == "" {
			return nil, errors.New("open state store file://: no path")
		}
		return OpenBolt(path)
	case "redis", "rediss":
		return OpenRedis(ctx, spec)
	case "dynamodb":
		return OpenDynamo(ctx, spec)
	default:
		return nil, fmt.Errorf("open state store %s: %s:// is not supported by this host yet (want memory, a file path, file://PATH, redis://, rediss:// or dynamodb://): %w",
			Redacted(spec), m[1], errors.ErrUnsupported)
	}
}
