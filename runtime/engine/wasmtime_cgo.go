//go:build wasmtime && cgo && unix

package engine

// What wasmtime-go does not expose of Wasmtime's C API, called directly:
//
//   - a memory creator, so that every refused memory.grow is seen (the
//     store limiter wasmtime-go offers refuses silently, which would leave
//     MemoryLimitHit to guesswork), the peak size is exact, and Go reads
//     the guest's memory without a cgo call;
//   - the epoch deadline callback, so that one store can be interrupted
//     without interrupting every other store of the engine;
//   - wasmtime_func_call_unchecked, which takes the parameters as raw
//     slots, as Function.CallWithStack has them: wasmtime-go's Func.Call
//     builds and frees the function's type on every call, which costs ten
//     times the call itself.
//
// The prototypes are declared here rather than included: wasmtime.h lives
// in wasmtime-go's module directory, which cgo directives cannot name. The
// symbols come from the libwasmtime.a that wasmtime-go links. The calls
// need raw values wasmtime-go keeps in unexported fields (Config, Store and
// Func); checkWasmtimeLayout refuses to start the engine if those fields are
// not where they were when this was written (wasmtime-go v39).

/*
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

typedef struct wasm_config_t wasm_config_t;
typedef struct wasm_memorytype_t wasm_memorytype_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct { size_t size; char *data; } ferry_byte_vec_t; // wasm_byte_vec_t
typedef struct { uint64_t store_id; void *private_; } ferry_func_t; // wasmtime_func_t

extern wasmtime_error_t *wasmtime_error_new(const char *);
extern void wasmtime_error_message(const wasmtime_error_t *, ferry_byte_vec_t *);
extern void wasmtime_error_delete(wasmtime_error_t *);
extern bool wasmtime_trap_code(const wasm_trap_t *, uint8_t *);
extern void wasm_trap_message(const wasm_trap_t *, ferry_byte_vec_t *);
extern void wasm_trap_delete(wasm_trap_t *);
extern void wasm_byte_vec_delete(ferry_byte_vec_t *);
extern wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *, const ferry_func_t *,
	void *args_and_results, size_t args_and_results_len, wasm_trap_t **);

typedef struct {
	void *env;
	uint8_t *(*get_memory)(void *env, size_t *byte_size, size_t *byte_capacity);
	wasmtime_error_t *(*grow_memory)(void *env, size_t new_size);
	void (*finalizer)(void *);
} ferry_linear_memory_t;

typedef struct {
	void *env;
	wasmtime_error_t *(*new_memory)(void *env, const wasm_memorytype_t *ty,
		size_t minimum, size_t maximum, size_t reserved_size_in_bytes,
		size_t guard_size_in_bytes, ferry_linear_memory_t *memory_ret);
	void (*finalizer)(void *);
} ferry_memory_creator_t;

extern void wasmtime_config_host_memory_creator_set(wasm_config_t *, ferry_memory_creator_t *);
extern void wasmtime_store_epoch_deadline_callback(wasmtime_store_t *store,
	wasmtime_error_t *(*func)(wasmtime_context_t *, void *, uint64_t *, uint8_t *),
	void *data, void (*finalizer)(void *));

// ferry_mem is one linear memory: a reservation of capacity bytes plus the
// guard Wasmtime asked for, of which the first size bytes are accessible.
// It never moves, so compiled code that relies on the reservation and the
// guard to elide bounds checks stays correct.
typedef struct {
	uint8_t *base;
	size_t size, capacity, mapped;
	uint64_t limit; // 0: none
	uint64_t peak, want;
	int hit;
} ferry_mem;

// Wasmtime creates memories while it instantiates, on the calling thread,
// and tells the creator nothing about the store. Go pins the instantiating
// goroutine to its thread and announces the limit here first.
static __thread int ferry_tracking;
static __thread uint64_t ferry_limit;
static __thread ferry_mem *ferry_tracked;

static void ferry_track_begin(uint64_t limit) {
	ferry_tracking = 1;
	ferry_limit = limit;
	ferry_tracked = NULL;
}

// ferry_track_current is the memory the instantiation in progress on this
// thread has created so far, for host functions its start function calls.
static ferry_mem *ferry_track_current(void) { return ferry_tracked; }

static ferry_mem *ferry_track_end(void) {
	ferry_mem *m = ferry_tracked;
	ferry_tracking = 0;
	ferry_tracked = NULL;
	return m;
}

static uint8_t *ferry_mem_get(void *env, size_t *size, size_t *capacity) {
	ferry_mem *m = env;
	*size = m->size;
	*capacity = m->capacity;
	return m->base;
}

static wasmtime_error_t *ferry_mem_grow(void *env, size_t new_size) {
	ferry_mem *m = env;
	if (m->limit && new_size > m->limit) {
		// Wasmtime turns the error into memory.grow returning -1.
		m->hit = 1;
		if (new_size > m->want) m->want = new_size;
		return wasmtime_error_new("memory limit reached");
	}
	if (new_size > m->capacity) return wasmtime_error_new("memory reservation exhausted");
	if (new_size > m->size &&
	    mprotect(m->base + m->size, new_size - m->size, PROT_READ | PROT_WRITE) != 0)
		return wasmtime_error_new("cannot commit memory");
	m->size = new_size;
	if (new_size > m->peak) m->peak = new_size;
	return NULL;
}

// A pool of released reservations, as engine.mappingPool is for wazero: a
// fresh mapping costs a page fault (and the kernel zeroing a page) for every
// page the guest touches, a recycled one only clearing what the last guest
// used. Clearing happens when a reservation is taken, where instances are
// created (a pool refill, off the hot path), not where they are closed.
typedef struct ferry_free {
	uint8_t *base;
	size_t mapped, dirty; // [0, dirty) is readable and writable
	struct ferry_free *next;
} ferry_free;

static pthread_mutex_t ferry_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static ferry_free *ferry_pool;
static int ferry_pool_len, ferry_pool_max;

static void ferry_pool_grow(int max) {
	pthread_mutex_lock(&ferry_pool_mu);
	if (max > ferry_pool_max) ferry_pool_max = max;
	pthread_mutex_unlock(&ferry_pool_mu);
}

// ferry_pool_take returns a pooled reservation of mapped bytes, or NULL.
static uint8_t *ferry_pool_take(size_t mapped, size_t *dirty) {
	pthread_mutex_lock(&ferry_pool_mu);
	ferry_free **p = &ferry_pool;
	while (*p != NULL && (*p)->mapped != mapped) p = &(*p)->next;
	ferry_free *f = *p;
	if (f != NULL) {
		*p = f->next;
		ferry_pool_len--;
	}
	pthread_mutex_unlock(&ferry_pool_mu);
	if (f == NULL) return NULL;
	uint8_t *base = f->base;
	*dirty = f->dirty;
	free(f);
	return base;
}

// ferry_pool_put keeps a reservation, or returns 0 when the pool is full.
static int ferry_pool_put(uint8_t *base, size_t mapped, size_t dirty) {
	ferry_free *f = malloc(sizeof *f);
	if (f == NULL) return 0;
	f->base = base;
	f->mapped = mapped;
	f->dirty = dirty;
	pthread_mutex_lock(&ferry_pool_mu);
	int kept = ferry_pool_len < ferry_pool_max;
	if (kept) {
		f->next = ferry_pool;
		ferry_pool = f;
		ferry_pool_len++;
	}
	pthread_mutex_unlock(&ferry_pool_mu);
	if (!kept) free(f);
	return kept;
}

static void ferry_pool_drain(void) {
	pthread_mutex_lock(&ferry_pool_mu);
	ferry_free *f = ferry_pool;
	ferry_pool = NULL;
	ferry_pool_len = 0;
	pthread_mutex_unlock(&ferry_pool_mu);
	while (f != NULL) {
		ferry_free *next = f->next;
		munmap(f->base, f->mapped);
		free(f);
		f = next;
	}
}

static void ferry_mem_free(void *env) {
	ferry_mem *m = env;
	if (!ferry_pool_put(m->base, m->mapped, m->size)) munmap(m->base, m->mapped);
	free(m);
}

// ferry_reserve returns mapped bytes of which the first minimum are readable,
// writable and zero, and the rest inaccessible.
static uint8_t *ferry_reserve(size_t mapped, size_t minimum) {
	size_t dirty;
	uint8_t *base = ferry_pool_take(mapped, &dirty);
	if (base != NULL) {
		memset(base, 0, dirty);
		int ok = 1;
		if (dirty > minimum) ok = mprotect(base + minimum, dirty - minimum, PROT_NONE) == 0;
		else if (minimum > dirty) ok = mprotect(base + dirty, minimum - dirty, PROT_READ | PROT_WRITE) == 0;
		if (ok) return base;
		munmap(base, mapped);
	}
	base = mmap(NULL, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANON | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) return NULL;
	if (minimum > 0 && mprotect(base, minimum, PROT_READ | PROT_WRITE) != 0) {
		munmap(base, mapped);
		return NULL;
	}
	return base;
}

static const size_t ferry_max_capacity = (size_t)4 << 30; // wasm32

static wasmtime_error_t *ferry_new_memory(void *env, const wasm_memorytype_t *ty,
		size_t minimum, size_t maximum, size_t reserved, size_t guard,
		ferry_linear_memory_t *ret) {
	(void)env; (void)ty;
	// Only the first memory of an announced instantiation is limited and
	// reported (the engine disables multi-memory).
	int tracked = ferry_tracking && ferry_tracked == NULL;
	uint64_t limit = tracked ? ferry_limit : 0;
	if (limit && minimum > limit) return wasmtime_error_new("memory minimum over the limit");
	size_t capacity = reserved; // Wasmtime's static reservation, if it wants one
	if (capacity == 0) {
		capacity = maximum < ferry_max_capacity ? maximum : ferry_max_capacity;
		if (limit && limit < capacity) capacity = (size_t)((limit + 65535) & ~(uint64_t)65535);
	}
	if (minimum > capacity || capacity > SIZE_MAX - guard) return wasmtime_error_new("memory too large");
	ferry_mem *m = calloc(1, sizeof *m);
	if (m == NULL) return wasmtime_error_new("out of host memory");
	m->mapped = capacity + guard;
	m->base = ferry_reserve(m->mapped, minimum);
	if (m->base == NULL) {
		free(m);
		return wasmtime_error_new("cannot reserve memory");
	}
	m->size = minimum;
	m->capacity = capacity;
	m->limit = limit;
	m->peak = minimum;
	if (tracked) ferry_tracked = m;
	ret->env = m;
	ret->get_memory = ferry_mem_get;
	ret->grow_memory = ferry_mem_grow;
	ret->finalizer = ferry_mem_free;
	return NULL;
}

static void ferry_install_memory_creator(wasm_config_t *cfg) {
	ferry_memory_creator_t c = {NULL, ferry_new_memory, NULL};
	wasmtime_config_host_memory_creator_set(cfg, &c);
}

// ferry_epoch runs when a store reaches its epoch deadline, which happens to
// every running store of the engine when any call's context ends. Only the
// store whose flag is set stops; the others carry on to the next epoch.
static wasmtime_error_t *ferry_epoch(wasmtime_context_t *cx, void *data, uint64_t *delta, uint8_t *kind) {
	(void)cx;
	if (__atomic_load_n((int32_t *)data, __ATOMIC_ACQUIRE)) return wasmtime_error_new("interrupted");
	*delta = 1;
	*kind = 0; // continue
	return NULL;
}

static int32_t *ferry_watch_epochs(wasmtime_store_t *store) {
	int32_t *flag = calloc(1, sizeof *flag);
	if (flag != NULL) wasmtime_store_epoch_deadline_callback(store, ferry_epoch, flag, free);
	return flag;
}

// ferry_failure describes a failed call: the trap code (-1 for a trap
// without one, -2 for an error that is not a trap) and the message, which
// the caller frees.
typedef struct {
	int code;
	char *msg;
	size_t len;
} ferry_failure;

// ferry_call calls f with n raw slots of 16 bytes at vals, parameters in,
// results out. It returns 0, or 1 and fills out.
static int ferry_call(wasmtime_context_t *cx, const ferry_func_t *f, void *vals, size_t n, ferry_failure *out) {
	wasm_trap_t *trap = NULL;
	wasmtime_error_t *err = wasmtime_func_call_unchecked(cx, f, vals, n, &trap);
	if (err == NULL && trap == NULL) return 0;
	ferry_byte_vec_t m = {0, NULL};
	size_t len;
	if (trap != NULL) {
		uint8_t code;
		out->code = wasmtime_trap_code(trap, &code) ? code : -1;
		wasm_trap_message(trap, &m);
		len = m.size > 0 && m.data[m.size - 1] == 0 ? m.size - 1 : m.size; // NUL-terminated
		wasm_trap_delete(trap);
	} else {
		out->code = -2;
		wasmtime_error_message(err, &m);
		len = m.size;
		wasmtime_error_delete(err);
	}
	out->msg = malloc(len + 1);
	out->len = out->msg != NULL ? len : 0;
	if (out->msg != NULL && len > 0) memcpy(out->msg, m.data, len);
	wasm_byte_vec_delete(&m);
	return 1;
}
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// checkWasmtimeLayout verifies that wasmtime.Config, wasmtime.Store and
// wasmtime.Func still begin with the C values this file reads.
func checkWasmtimeLayout() error {
	for _, f := range []struct {
		t    reflect.Type
		name string
		size uintptr
	}{
		{reflect.TypeFor[wasmtime.Config](), "_ptr", unsafe.Sizeof(uintptr(0))},
		{reflect.TypeFor[wasmtime.Store](), "_ptr", unsafe.Sizeof(uintptr(0))},
		{reflect.TypeFor[wasmtime.Func](), "val", unsafe.Sizeof(C.ferry_func_t{})},
	} {
		if f.t.NumField() == 0 || f.t.Field(0).Name != f.name || f.t.Field(0).Type.Size() != f.size {
			return errors.New("wasmtime-go's " + f.t.Name() + " changed layout: update runtime/engine/wasmtime_cgo.go")
		}
	}
	return nil
}

// installMemoryCreator makes every memory of engines made from cfg a
// trackedMemory. It must run before the engine is created.
func installMemoryCreator(cfg *wasmtime.Config) {
	C.ferry_install_memory_creator(*(**C.wasm_config_t)(unsafe.Pointer(cfg)))
	runtime.KeepAlive(cfg)
}

// keepReservations lets the memory creator keep up to n released memory
// reservations for reuse (the largest n any engine asked for).
func keepReservations(n int) { C.ferry_pool_grow(C.int(n)) }

// dropReservations unmaps the reservations kept for reuse.
func dropReservations() { C.ferry_pool_drain() }

// trackedMemory is an instance's linear memory as the memory creator keeps
// it. Its counters and bytes are read without a cgo call. It is valid until
// the store is closed, when release makes it empty.
type trackedMemory struct{ m *C.ferry_mem }

var _ Memory = (*trackedMemory)(nil)

func (t *trackedMemory) peak() uint64 { return uint64(t.m.peak) }
func (t *trackedMemory) hit() bool    { return t.m.hit != 0 }
func (t *trackedMemory) want() uint64 { return uint64(t.m.want) }
func (t *trackedMemory) release()     { t.m = nil }

// bytes is the accessible memory, valid until the guest runs again.
func (t *trackedMemory) bytes() []byte {
	if t.m == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(t.m.base)), int(t.m.size))
}

func (t *trackedMemory) Read(offset, n uint32) ([]byte, bool) {
	return span(t.bytes(), offset, n)
}

func (t *trackedMemory) Write(offset uint32, b []byte) bool {
	if uint64(len(b)) > math.MaxUint32 {
		return false
	}
	dst, ok := span(t.bytes(), offset, uint32(len(b)))
	if ok {
		copy(dst, b)
	}
	return ok
}

func (t *trackedMemory) Size() uint32 { return uint32(len(t.bytes())) }

// currentTracked is the memory of the instantiation in progress on this
// thread, or nil: host functions called by a start function find the
// memory this way, since the instance is not known yet.
func currentTracked() *trackedMemory {
	if m := C.ferry_track_current(); m != nil {
		return &trackedMemory{m}
	}
	return nil
}

// instantiateTracked runs instantiate with the memory it creates limited to
// limit bytes (0: no limit) and returns that memory's counters, or nil if it
// created none. The goroutine stays on one thread throughout, since the
// memory creator learns the limit from a thread-local.
func instantiateTracked[T any](limit uint64, instantiate func() (T, error)) (v T, mem *trackedMemory, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	C.ferry_track_begin(C.uint64_t(limit))
	defer func() {
		// Even if instantiate panics: the next memory this thread
		// creates must not be taken for this instance's.
		if m := C.ferry_track_end(); m != nil {
			mem = &trackedMemory{m}
		}
	}()
	v, err = instantiate()
	return v, nil, err // mem is set by the deferred ferry_track_end
}

// funcSig is an exported function's type.
type funcSig struct{ params, results []wasmtime.ValKind }

// rawFunc is an exported function, called through wasmtime_func_call_unchecked.
type rawFunc struct {
	cx      *C.wasmtime_context_t
	fn      C.ferry_func_t
	sig     funcSig
	slots   []byte // 16 bytes per slot, little-endian, as Wasmtime wants them
	failure C.ferry_failure
	refuse  string // why the function cannot be called on a stack, if it cannot
}

// newRawFunc wraps fn, of type sig, from store.
func newRawFunc(store *wasmtime.Store, fn *wasmtime.Func, sig funcSig) *rawFunc {
	f := &rawFunc{
		cx:    (*C.wasmtime_context_t)(unsafe.Pointer(store.Context())),
		fn:    *(*C.ferry_func_t)(unsafe.Pointer(fn)),
		sig:   sig,
		slots: make([]byte, 16*max(len(sig.params), len(sig.results), 1)),
	}
	runtime.KeepAlive(fn)
	runtime.KeepAlive(store)
	// Unchecked calls trust the slots to hold what the function takes:
	// numbers only, so nothing in them is a reference Wasmtime must root.
	for _, k := range slices.Concat(sig.params, sig.results) {
		if k != wasmtime.KindI32 && k != wasmtime.KindI64 && k != wasmtime.KindF32 && k != wasmtime.KindF64 {
			f.refuse = "exported function has a " + k.String() + " parameter or result, which has no stack encoding here"
		}
	}
	return f
}

// callFailure is how a call failed: a trap code (-1: a trap without one,
// -2: not a trap) and Wasmtime's message.
type callFailure struct {
	code int
	msg  string
}

// call calls the function with its parameters from stack and writes its
// results to stack. The store must be alive.
func (f *rawFunc) call(stack []uint64) *callFailure {
	if f.refuse != "" {
		return &callFailure{code: -2, msg: f.refuse}
	}
	for i := range f.sig.params {
		binary.LittleEndian.PutUint64(f.slots[16*i:], stack[i])
	}
	// &f.fn and &f.failure are passed as such: cgo then checks only those
	// fields for Go pointers, not the rest of f.
	if C.ferry_call(f.cx, &f.fn, unsafe.Pointer(&f.slots[0]), C.size_t(len(f.slots)/16), &f.failure) != 0 {
		out := f.failure
		msg := C.GoStringN(out.msg, C.int(out.len))
		C.free(unsafe.Pointer(out.msg))
		return &callFailure{code: int(out.code), msg: msg}
	}
	for i, k := range f.sig.results {
		v := binary.LittleEndian.Uint64(f.slots[16*i:])
		if k == wasmtime.KindI32 || k == wasmtime.KindF32 {
			v = uint64(uint32(v))
		}
		stack[i] = v
	}
	return nil
}

// epochWatch lets one store be interrupted at the engine's next epoch.
type epochWatch struct{ flag *int32 }

// watchEpochs installs the deadline callback on store.
func watchEpochs(store *wasmtime.Store) (epochWatch, error) {
	flag := C.ferry_watch_epochs(*(**C.wasmtime_store_t)(unsafe.Pointer(store)))
	runtime.KeepAlive(store)
	if flag == nil {
		return epochWatch{}, errors.New("out of host memory")
	}
	return epochWatch{(*int32)(unsafe.Pointer(flag))}, nil
}

// set makes the store stop at its next epoch check (stop) or not.
func (w epochWatch) set(stop bool) {
	var v int32
	if stop {
		v = 1
	}
	atomic.StoreInt32(w.flag, v)
}
