// wordcount is a C command: a plain WASI program with no Ferry code at all.
// It counts stdin like `wc` and writes "lines words bytes\n" to stdout; the
// Ferry host feeds the job's input to stdin and takes stdout as the output.
//
// Build: clang --target=wasm32-wasi -O2 wordcount.c (ferry build's default
// shape for C is a command: main becomes the _start export).
#include <stdio.h>

// isspace from <ctype.h> depends on the locale; wc's word splitting here is
// the ASCII whitespace set, which makes the output the same everywhere.
static int is_space(int c) {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int main(void) {
	unsigned long long lines = 0, words = 0, bytes = 0;
	int in_word = 0;
	unsigned char buf[64 * 1024];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
		bytes += n;
		for (size_t i = 0; i < n; i++) {
			int c = buf[i];
			if (c == '\n') {
				lines++;
			}
			if (is_space(c)) {
				in_word = 0;
			} else if (!in_word) {
				in_word = 1;
				words++;
			}
		}
	}
	if (ferror(stdin)) {
		perror("wordcount: reading stdin");
		return 1;
	}
	if (printf("%llu %llu %llu\n", lines, words, bytes) < 0 || fflush(stdout) != 0) {
		return 1;
	}
	return 0;
}
