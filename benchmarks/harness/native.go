package harness

import (
	"context"
	"errors"
)

// nativeTarget calls the jobs' plain Go functions.
type nativeTarget struct{ o *Options }

func (*nativeTarget) kind() string { return KindNative }
func (*nativeTarget) close() error { return nil }

func (t *nativeTarget) measure(ctx context.Context, j *Job) (Result, []byte, error) {
	if j.Native == nil {
		return Result{}, nil, errors.New("no native reference")
	}
	call := func(context.Context) ([]byte, error) { return j.Native(j.Input) }
	var r Result
	lat, out, err := sequential(ctx, t.o.Warm, 5*t.o.Duration, call)
	if err != nil {
		return r, nil, err
	}
	r.WarmP50Us, r.WarmP99Us = quantileUs(lat, 0.5), quantileUs(lat, 0.99)
	r.Load = loads(ctx, t.o, call, nil)
	return r, out, nil
}
