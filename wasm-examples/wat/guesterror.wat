;; guesterror: a reactor that reports a job error through ferry.error and
;; logs through ferry.log.
(module
  (import "ferry" "log" (func $log (param i32 i32 i32)))
  (import "ferry" "error" (func $error (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "about to fail")
  (data (i32.const 48) "input rejected: want a u64")
  (func (export "ferry_abi_v1"))
  (func (export "ferry_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "ferry_run") (param i32 i32) (result i64)
    (call $log (i32.const 2) (i32.const 16) (i32.const 13))
    (call $error (i32.const 48) (i32.const 26))
    (i64.const 0)))
