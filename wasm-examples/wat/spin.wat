;; spin: a job that takes a while and then succeeds. The first four input
;; bytes (little-endian u32) are a number of loop iterations to burn; the
;; output is the input. Tests use it for in-flight work (graceful shutdown,
;; concurrency limits) that must finish rather than fail.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "ferry_abi_v1"))
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
    (local $n i32)
    (global.set $heap (i32.const 1024))
    (if (i32.ge_u (local.get $len) (i32.const 4))
      (then (local.set $n (i32.load (local.get $ptr)))))
    (block $done
      (loop $spin
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $spin)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
