;; echo: the trivial reactor job. Output = input, copied by the host in and
;; out in bulk. Used by tests and by the warm-call overhead benchmark.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "ferry_abi_v1"))
  ;; Bump allocator: every invocation runs on a fresh instance by default,
  ;; so memory never needs to be freed.
  (func (export "ferry_alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))
  (func (export "ferry_run") (param $ptr i32) (param $len i32) (result i64)
    ;; Reset the bump pointer so a reused (pure) instance does not leak.
    (global.set $heap (i32.const 1024))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
