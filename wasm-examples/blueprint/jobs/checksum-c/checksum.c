// checksum is a C reactor that implements the Ferry guest ABI v1
// (docs/abi.md) by hand, with no SDK: the input's FNV-1a 64-bit hash out,
// as 16 lowercase hex digits.
//
// Build: clang --target=wasm32-wasi -O2 -mexec-model=reactor checksum.c
// (ferry build does this for a C job with shape = "reactor"). The reactor
// exec model links crt1-reactor.o, whose _initialize runs the C
// constructors once; the host calls it before the first ferry_run.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// EXPORT names a wasm export explicitly, so the ABI does not depend on
// linker flags or symbol visibility.
#define EXPORT(name) __attribute__((export_name(name)))

// The input buffer is kept between calls and only grows: the host writes
// into it right after ferry_alloc, and a reused instance does not churn
// malloc on every invocation.
static unsigned char *input;
static size_t input_cap;

// The output must stay valid until the next call into the instance, so it
// lives in static memory rather than on the stack.
static char output[16];

// ferry_abi_v1 declares the ABI version; its body is never called.
EXPORT("ferry_abi_v1") void ferry_abi_v1(void) {}

// ferry_alloc returns len writable bytes, or 0 when memory is exhausted.
EXPORT("ferry_alloc") int32_t ferry_alloc(int32_t len) {
	if (len < 0) {
		return 0;
	}
	// Hand out at least one byte so an empty input still gets a non-zero
	// pointer (0 means failure to the host).
	size_t need = len > 0 ? (size_t)len : 1;
	if (need > input_cap) {
		unsigned char *p = realloc(input, need);
		if (p == NULL) {
			return 0;
		}
		input = p;
		input_cap = need;
	}
	return (int32_t)(uintptr_t)input;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
	uint64_t h = 14695981039346656037ULL; // FNV-1a 64 offset basis
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL; // FNV-1a 64 prime
	}
	return h;
}

// ferry_run hashes the len bytes at ptr and returns out_ptr<<32 | out_len.
EXPORT("ferry_run") int64_t ferry_run(int32_t ptr, int32_t len) {
	static const char hex[] = "0123456789abcdef";
	uint64_t h = fnv1a64((const unsigned char *)(uintptr_t)ptr, len > 0 ? (size_t)len : 0);
	for (int i = 15; i >= 0; i--) {
		output[i] = hex[h & 0xf];
		h >>= 4;
	}
	// Pointers are 32-bit; go through uint32_t so neither half sign-extends.
	uint64_t packed = ((uint64_t)(uint32_t)(uintptr_t)output << 32) | (uint32_t)sizeof output;
	return (int64_t)packed;
}
