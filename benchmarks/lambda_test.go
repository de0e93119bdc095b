package benchmarks

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/ferryrun/ferry/hosts/host"
	"github.com/ferryrun/ferry/hosts/hostpkg"
	"github.com/ferryrun/ferry/hosts/lambda"
	"github.com/ferryrun/ferry/hosts/lambda/lambdatest"
	"github.com/ferryrun/ferry/hosts/lambda/locallambda"
	"github.com/ferryrun/ferry/hosts/local"
	"github.com/ferryrun/ferry/runtime/modstore"
	"github.com/ferryrun/ferry/runtime/wasmrt"
	examples "github.com/ferryrun/ferry/wasm-examples"
)

var initRE = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
var durRE = regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)

// lambdaSetup is the Lambda host on a local Lambda running the real
// bootstrap.
func lambdaSetup(b *testing.B, engine string) (*lambda.Host, *locallambda.Server) {
	b.Helper()
	srv, url := locallambda.Start(b, locallambda.Config{})
	h, err := lambda.New(lambda.Config{
		Region: "us-east-1", BaseEndpoint: url, Role: "arn:aws:iam::123456789012:role/ferry-bench",
		AWS:  aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "secret", "")},
		Arch: lambdatest.NativeArch(), Bootstrap: lambdatest.Bootstrap(b, ""), Engine: engine, WaitMinDelay: 10 * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, srv
}

// BenchmarkLambdaColdStart measures what a new execution environment
// costs for the Go incredible-squaring and sha256 jobs, per engine, as
// the local Lambda reports it: Init Duration (exec of the bootstrap to
// its first /next: loading the package and the module) and the first
// call's Duration (for Go guests, instantiation and _initialize). Each
// iteration changes the function's configuration, which retires the warm
// environment, so the next call is cold.
func BenchmarkLambdaColdStart(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	ctx := context.Background()
	for _, engine := range []string{"tiered", "compiler", "interpreter"} {
		h, srv := lambdaSetup(b, engine)
		for _, job := range []string{"incredible-squaring", "sha256"} {
			wasm, err := examples.BuildGo(ctx, job, examples.Reactor)
			if err != nil {
				b.Fatal(err)
			}
			name := job + "-" + engine
			d, err := h.Deploy(ctx, host.Job{Name: name, Module: wasm})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(job+"/"+engine, func(b *testing.B) {
				var inits, firsts []float64
				for i := range b.N {
					_, err := h.Client().UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
						FunctionName: aws.String(d.ID),
						Environment:  &types.Environment{Variables: map[string]string{"FERRY_DIGEST": d.Digest, "FERRY_JOB": name, "FERRY_ENGINE": engine, "BENCH_ITER": strconv.Itoa(i)}},
					})
					if err != nil {
						b.Fatal(err)
					}
					if err := awslambda.NewFunctionUpdatedV2Waiter(h.Client(), func(o *awslambda.FunctionUpdatedV2WaiterOptions) { o.MinDelay = 10 * time.Millisecond }).
						Wait(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(d.ID)}, time.Minute); err != nil {
						b.Fatal(err)
					}
					out, err := h.Client().Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(d.ID), LogType: types.LogTypeTail,
						Payload: []byte(`{"ferry":{"v":1,"input":"` + base64.StdEncoding.EncodeToString([]byte("12345")) + `"}}`)})
					if err != nil || out.FunctionError != nil {
						b.Fatalf("invoke: %v %s", err, out.Payload)
					}
					logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
					m, n := initRE.FindSubmatch(logs), durRE.FindSubmatch(logs)
					if m == nil || n == nil {
						b.Fatalf("no Init Duration: the call was not cold:\n%s", logs)
					}
					ms, _ := strconv.ParseFloat(string(m[1]), 64)
					first, _ := strconv.ParseFloat(string(n[1]), 64)
					inits, firsts = append(inits, ms), append(firsts, first)
				}
				b.ReportMetric(median(inits), "init-ms")
				b.ReportMetric(median(firsts), "first-call-ms")
				b.ReportMetric(0, "ns/op")
			})
		}
		_ = srv
	}
}

// BenchmarkLambdaWarm measures a warm call of the trivial echo job through
// the Lambda host and the local Lambda (the SDK's Invoke over loopback
// HTTP, the Runtime API's next and response, the bootstrap's decode and
// encode) next to the same call on the in-process local host. The
// difference is what the Lambda path adds on this machine; shim-ms is the
// part spent inside the function around the job (REPORT Duration minus
// the job's own time).
func BenchmarkLambdaWarm(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	ctx := context.Background()
	wasm, err := examples.WAT("echo")
	if err != nil {
		b.Fatal(err)
	}
	input := []byte("0123456789abcdef")
	b.Run("local", func(b *testing.B) {
		rt, err := wasmrt.New(ctx, wasmrt.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		lh, err := local.New(local.Config{Runtime: rt, ReusePure: true})
		if err != nil {
			b.Fatal(err)
		}
		d, err := lh.Deploy(ctx, host.Job{Name: "echo", Module: wasm})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := lh.Invoke(ctx, d, host.Request{Input: input}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lambda", func(b *testing.B) {
		h, _ := lambdaSetup(b, "")
		d, err := h.Deploy(ctx, host.Job{Name: "echo", Module: wasm})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := h.Invoke(ctx, d, host.Request{Input: input}); err != nil { // cold
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			res, err := h.Invoke(ctx, d, host.Request{Input: input})
			if err != nil {
				b.Fatal(err)
			}
			if res.Cold {
				b.Fatal("a warm call started an environment")
			}
		}
		b.StopTimer()
		// The shim's share: REPORT Duration (the whole invocation inside
		// the function) minus the job's own duration, from the bootstrap.
		var inside []float64
		for range 50 {
			out, err := h.Client().Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(d.ID), LogType: types.LogTypeTail,
				Payload: []byte(`{"ferry":{"v":1,"input":"MDEyMzQ1Njc4OWFiY2RlZg=="}}`)})
			if err != nil || out.FunctionError != nil {
				b.Fatal(err)
			}
			logs, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			if m := durRE.FindSubmatch(logs); m != nil {
				ms, _ := strconv.ParseFloat(string(m[1]), 64)
				inside = append(inside, ms)
			}
		}
		b.ReportMetric(median(inside), "inside-function-ms")
	})
}

// BenchmarkLambdaZip reports the size of the package ferry deploys for the
// Go incredible-squaring job on arm64 (the default architecture): the
// bootstrap, module.wasm and manifest.json, deflated. Lambda takes 50 MB
// directly; Ferry's target is 10 MB.
func BenchmarkLambdaZip(b *testing.B) {
	if testing.Short() {
		b.Skip("builds binaries")
	}
	boot := lambdatest.Bootstrap(b, "arm64")
	for _, job := range []string{"incredible-squaring", "sha256"} {
		wasm, err := examples.BuildGo(context.Background(), job, examples.Reactor)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(job, func(b *testing.B) {
			var zip []byte
			for range b.N {
				zip, err = hostpkg.Build(wasm, hostpkg.Manifest{Job: job}, map[string][]byte{hostpkg.BootstrapFile: boot})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(zip))/1e6, "zip-MB")
			b.ReportMetric(float64(len(boot))/1e6, "bootstrap-MB")
			b.ReportMetric(float64(len(wasm))/1e6, "module-MB")
			_ = modstore.Digest(zip)
		})
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
